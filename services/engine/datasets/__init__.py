"""Datasets: see servicer.py."""
