"""Optimization: parameter sweeps, walk-forward and the statistics that say how far to trust
their winner (issue 11). Built piece by piece; `overfitting` is the first."""
