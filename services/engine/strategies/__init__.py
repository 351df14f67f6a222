"""Strategies: see servicer.py."""
