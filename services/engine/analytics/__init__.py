"""Analytics: see servicer.py."""
