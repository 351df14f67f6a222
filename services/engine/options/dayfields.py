"""The seeds' names for option fields in day files: the proto's generic `underlying_at_entry` /
`underlying_at_exit` are written `nifty_spot_at_entry` / `nifty_spot_at_exit` (after the
underlying's root), and read back under either name. Kept free of heavy imports: GetDay uses it.
"""

from __future__ import annotations

_SPOT_FIELDS = ("underlying_at_entry", "underlying_at_exit")


def to_day_file(trade: dict, root: str) -> dict:
    """A stream trade as the day file writes it: the spot fields named after the underlying
    (`nifty_spot_at_entry`), as in the seeds."""
    prefix = root.lower().replace("-", "_")
    return {(f"{prefix}_spot_at_{k[len('underlying_at_'):]}" if k in _SPOT_FIELDS else k): v
            for k, v in trade.items()}


def from_day_file(trade: dict) -> dict:
    """The inverse of to_day_file, for any underlying's name."""
    out = {}
    for k, v in trade.items():
        if k.endswith("_spot_at_entry"):
            k = "underlying_at_entry"
        elif k.endswith("_spot_at_exit"):
            k = "underlying_at_exit"
        out[k] = v
    return out
