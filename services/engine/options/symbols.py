"""Option contract symbols in the seeds' format, `NIFTY:2024-10-31:OPT:24350:PE`: parsed, checked, printed.

`str(OptionSymbol)` is the one canonical spelling (strike without a trailing ".0"), so the text can
key stores; `parse` accepts only that spelling and says how to fix anything else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

__all__ = ["OptionSymbol", "SymbolError", "CALL", "PUT", "OPTION_TYPES", "SYMBOL_FORMAT", "parse_symbol",
           "format_symbol", "format_strike", "underlying_root"]

CALL = "CE"  # NSE's names for call and put options (its contract files' OPTION_TYP column)
PUT = "PE"
OPTION_TYPES = (CALL, PUT)
SYMBOL_FORMAT = "<ROOT>:<expiry YYYY-MM-DD>:OPT:<strike>:<CE|PE>"
_EXAMPLE = "NIFTY:2024-10-31:OPT:24350:PE"
_MARKER = "OPT"
_PARTS = 5

_ROOT = re.compile(r"[A-Z0-9][A-Z0-9_-]*")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # date.fromisoformat also takes 20241031 and 2024-W44-4
_DECIMAL = re.compile(r"\d+(\.\d+)?")        # no sign, exponent, inf/nan, spaces or separators
_SIM_PREFIX = re.compile(r"\ASIM[-_ ]+")     # SIM-NIFTY: the built-in synthetic series of NIFTY 50
# Dataset spellings of NSE's "NIFTY 50" index (after upper-casing and dropping non-alphanumerics).
_ROOT_ALIASES = {"NIFTY50": "NIFTY"}


class SymbolError(ValueError):
    """A malformed option symbol or contract field; the message says what is wrong and the format."""


def _bad(text: str, problem: str) -> SymbolError:
    return SymbolError(f"bad option symbol {text!r}: {problem}; expected {SYMBOL_FORMAT}, e.g. {_EXAMPLE}")


def format_strike(strike: float) -> str:
    """24350.0 -> '24350', 24350.5 -> '24350.5': the shortest decimal that reads back to `strike`."""
    if float(strike).is_integer():
        return str(int(strike))
    # repr is the shortest round-tripping form; Decimal keeps it positional (no '1e-05').
    return format(Decimal(repr(float(strike))), "f")


def _root_problem(root: object) -> str | None:
    if not isinstance(root, str) or not _ROOT.fullmatch(root):
        return (f"root {root!r} must be upper-case letters, digits, '-' or '_' and start with a letter or digit "
                f"(e.g. NIFTY, BANKNIFTY)")
    return None


def _strike_problem(strike: object) -> str | None:
    if isinstance(strike, bool) or not isinstance(strike, (int, float)):
        return f"strike {strike!r} must be a number"
    if not math.isfinite(strike) or strike <= 0:
        return f"strike {strike!r} must be a positive finite number"
    return None


def _type_problem(option_type: object) -> str | None:
    if option_type not in OPTION_TYPES:
        return f"unknown option type {option_type!r} (use CE or PE)"
    return None


@dataclass(frozen=True)
class OptionSymbol:
    """One option contract: underlying root, expiry date, strike (index points) and CE/PE."""

    root: str
    expiry: date
    strike: float
    option_type: str

    def __post_init__(self) -> None:
        problem = (_root_problem(self.root) or _strike_problem(self.strike) or _type_problem(self.option_type))
        # datetime is a date subclass; a time of day has no place in a contract's expiry.
        if problem is None and (not isinstance(self.expiry, date) or isinstance(self.expiry, datetime)):
            problem = f"expiry {self.expiry!r} must be a datetime.date"
        if problem is not None:
            raise SymbolError(f"bad option contract: {problem}; symbols read {SYMBOL_FORMAT}, e.g. {_EXAMPLE}")
        object.__setattr__(self, "strike", float(self.strike))

    @classmethod
    def parse(cls, text: str) -> OptionSymbol:
        """The contract `text` names; SymbolError (what is wrong, the expected format) otherwise."""
        if not isinstance(text, str):
            raise SymbolError(f"an option symbol must be a string, got {type(text).__name__}; "
                              f"expected {SYMBOL_FORMAT}, e.g. {_EXAMPLE}")
        parts = text.split(":")
        if len(parts) != _PARTS:
            raise _bad(text, f"has {len(parts)} part{'s' if len(parts) != 1 else ''} separated by ':', "
                             f"not {_PARTS}")
        root, expiry_text, marker, strike_text, option_type = parts
        if marker != _MARKER:
            raise _bad(text, f"missing the {_MARKER} marker: the third part is {marker!r}")
        problem = _root_problem(root)
        if problem is not None:
            raise _bad(text, problem)
        expiry = _parse_expiry(text, expiry_text)
        strike = _parse_strike(text, strike_text)
        problem = _type_problem(option_type)
        if problem is not None:
            raise _bad(text, problem)
        return cls(root, expiry, strike, option_type)

    def format(self) -> str:
        return f"{self.root}:{self.expiry.isoformat()}:{_MARKER}:{format_strike(self.strike)}:{self.option_type}"

    def __str__(self) -> str:
        return self.format()


def _parse_expiry(text: str, expiry_text: str) -> date:
    if not _ISO_DAY.fullmatch(expiry_text):
        raise _bad(text, f"bad expiry date {expiry_text!r}: write it as YYYY-MM-DD")
    try:
        return date.fromisoformat(expiry_text)
    except ValueError as exc:
        raise _bad(text, f"bad expiry date {expiry_text!r}: {exc}") from None


def _parse_strike(text: str, strike_text: str) -> float:
    try:
        strike = float(strike_text)
    except ValueError:
        strike = math.nan
    if strike <= 0:
        raise _bad(text, f"non-positive strike {strike_text!r}: strikes are positive index points")
    if not _DECIMAL.fullmatch(strike_text):
        raise _bad(text, f"bad strike {strike_text!r}: write a plain positive decimal such as 24350 or 24350.5")
    canonical = format_strike(strike)
    if canonical != strike_text:  # one spelling per contract, so symbols can key stores and joins
        raise _bad(text, f"strike {strike_text!r} is not in canonical form: write {canonical}")
    return strike


def parse_symbol(text: str) -> OptionSymbol:
    """`OptionSymbol.parse` as a function."""
    return OptionSymbol.parse(text)


def format_symbol(root: str, expiry_date: date, strike: float, option_type: str) -> str:
    """The canonical symbol of a contract, e.g. ('NIFTY', 2024-10-31, 24350, 'PE') -> NIFTY:2024-10-31:OPT:24350:PE."""
    return OptionSymbol(root, expiry_date, strike, option_type).format()


def underlying_root(symbol: str) -> str:
    """The option root of a dataset symbol: SIM-NIFTY, NIFTY, NIFTY50, 'NIFTY 50' -> NIFTY.

    A leading 'SIM-' (a synthetic series of the same underlying) is dropped; anything else becomes its
    upper-cased letters and digits (e.g. 'Bank Nifty' -> BANKNIFTY).
    """
    name = _SIM_PREFIX.sub("", symbol.strip().upper(), count=1)
    alnum = re.sub(r"[^A-Z0-9]", "", name)
    if not alnum:
        raise SymbolError(f"dataset symbol {symbol!r} has no letters or digits to name an option root "
                          f"(e.g. NIFTY or SIM-NIFTY)")
    return _ROOT_ALIASES.get(alnum, alnum)
