"""Option symbols: the seeds' format round-trips, every malformed spelling is refused with a fix."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.engine.options.symbols import (CALL, OPTION_TYPES, PUT, SYMBOL_FORMAT, OptionSymbol, SymbolError,
                                             format_strike, format_symbol, parse_symbol, underlying_root)


@pytest.mark.parametrize("text, root, expiry, strike, option_type", [
    ("NIFTY:2024-10-31:OPT:24350:PE", "NIFTY", date(2024, 10, 31), 24350.0, PUT),   # the seeds' leg
    ("NIFTY:2024-10-17:OPT:25000:CE", "NIFTY", date(2024, 10, 17), 25000.0, CALL),
    ("NIFTY:2024-11-07:OPT:24350.5:PE", "NIFTY", date(2024, 11, 7), 24350.5, PUT),
    ("BANKNIFTY:2025-09-30:OPT:51000:CE", "BANKNIFTY", date(2025, 9, 30), 51000.0, CALL),
    ("NIFTY_NXT-50:2019-02-14:OPT:0.05:CE", "NIFTY_NXT-50", date(2019, 2, 14), 0.05, CALL),
])
def test_round_trip(text, root, expiry, strike, option_type):
    sym = OptionSymbol.parse(text)
    assert (sym.root, sym.expiry, sym.strike, sym.option_type) == (root, expiry, strike, option_type)
    assert isinstance(sym.strike, float)
    assert str(sym) == sym.format() == text
    assert parse_symbol(text) == sym
    assert format_symbol(root, expiry, strike, option_type) == text
    assert OptionSymbol(root, expiry, strike, option_type) == sym


def test_integral_strikes_print_without_a_fraction_and_compare_equal():
    a = OptionSymbol("NIFTY", date(2024, 10, 31), 24350, PUT)
    b = OptionSymbol("NIFTY", date(2024, 10, 31), 24350.0, PUT)
    assert a == b and hash(a) == hash(b) and str(a) == "NIFTY:2024-10-31:OPT:24350:PE"
    assert format_symbol("NIFTY", date(2024, 10, 31), 24350.0, "PE") == "NIFTY:2024-10-31:OPT:24350:PE"
    assert OPTION_TYPES == ("CE", "PE")


@pytest.mark.parametrize("strike, text", [
    (24350, "24350"), (24350.0, "24350"), (24350.5, "24350.5"), (24350.25, "24350.25"), (0.05, "0.05"),
    (1e-05, "0.00001"), (1e16, "10000000000000000"), (17.1, "17.1"),
])
def test_strikes_print_in_minimal_decimal_form(strike, text):
    assert format_strike(strike) == text


@given(st.floats(min_value=1e-4, max_value=1e7, allow_nan=False, allow_infinity=False))
def test_any_positive_strike_reads_back_exactly(strike):
    text = format_symbol("NIFTY", date(2024, 10, 31), strike, "CE")
    assert OptionSymbol.parse(text).strike == strike
    assert "e" not in text.split(":")[3] and not text.split(":")[3].endswith(".0")


@pytest.mark.parametrize("text, problem", [
    ("", "has 1 part separated by ':', not 5"),
    ("NIFTY:2024-10-31:OPT:24350", "has 4 parts separated by ':', not 5"),
    ("NIFTY:2024-10-31:OPT:24350:PE:X", "has 6 parts separated by ':', not 5"),
    ("NIFTY 2024-10-31 OPT 24350 PE", "has 1 part"),
    ("NIFTY:2024-10-31:FUT:24350:PE", "missing the OPT marker: the third part is 'FUT'"),
    ("NIFTY:2024-10-31:opt:24350:PE", "missing the OPT marker: the third part is 'opt'"),
    ("NIFTY:2024-10-31::24350:PE", "missing the OPT marker: the third part is ''"),
    ("nifty:2024-10-31:OPT:24350:PE", "root 'nifty' must be upper-case letters, digits, '-' or '_'"),
    (":2024-10-31:OPT:24350:PE", "root '' must be upper-case"),
    ("NIFTY 50:2024-10-31:OPT:24350:PE", "root 'NIFTY 50' must be upper-case"),
    ("-NIFTY:2024-10-31:OPT:24350:PE", "root '-NIFTY' must be upper-case"),
    ("NIFTY:2024-13-01:OPT:24350:PE", "bad expiry date '2024-13-01': month must be in 1..12"),
    ("NIFTY:2024-02-30:OPT:24350:PE", "bad expiry date '2024-02-30': day is out of range for month"),
    ("NIFTY:20241031:OPT:24350:PE", "bad expiry date '20241031': write it as YYYY-MM-DD"),
    ("NIFTY:31-10-2024:OPT:24350:PE", "bad expiry date '31-10-2024': write it as YYYY-MM-DD"),
    ("NIFTY:2024-W44-4:OPT:24350:PE", "bad expiry date '2024-W44-4'"),
    ("NIFTY::OPT:24350:PE", "bad expiry date ''"),
    ("NIFTY:2024-10-31:OPT:24350:XX", "unknown option type 'XX' (use CE or PE)"),
    ("NIFTY:2024-10-31:OPT:24350:pe", "unknown option type 'pe' (use CE or PE)"),
    ("NIFTY:2024-10-31:OPT:24350:CALL", "unknown option type 'CALL' (use CE or PE)"),
    ("NIFTY:2024-10-31:OPT:24350:", "unknown option type '' (use CE or PE)"),
    ("NIFTY:2024-10-31:OPT:0:PE", "non-positive strike '0'"),
    ("NIFTY:2024-10-31:OPT:0.0:PE", "non-positive strike '0.0'"),
    ("NIFTY:2024-10-31:OPT:-24350:PE", "non-positive strike '-24350'"),
    ("NIFTY:2024-10-31:OPT:-0:PE", "non-positive strike '-0'"),
    ("NIFTY:2024-10-31:OPT::PE", "bad strike ''"),
    ("NIFTY:2024-10-31:OPT:abc:PE", "bad strike 'abc': write a plain positive decimal"),
    ("NIFTY:2024-10-31:OPT:2.4e4:PE", "bad strike '2.4e4'"),
    ("NIFTY:2024-10-31:OPT:inf:PE", "bad strike 'inf'"),
    ("NIFTY:2024-10-31:OPT:nan:PE", "bad strike 'nan'"),
    ("NIFTY:2024-10-31:OPT:+24350:PE", "bad strike '+24350'"),
    ("NIFTY:2024-10-31:OPT:24_350:PE", "bad strike '24_350'"),
    ("NIFTY:2024-10-31:OPT: 24350:PE", "bad strike ' 24350'"),
    ("NIFTY:2024-10-31:OPT:24350.0:PE", "strike '24350.0' is not in canonical form: write 24350"),
    ("NIFTY:2024-10-31:OPT:024350:PE", "strike '024350' is not in canonical form: write 24350"),
    ("NIFTY:2024-10-31:OPT:24350.50:PE", "strike '24350.50' is not in canonical form: write 24350.5"),
])
def test_malformed_symbols_say_what_is_wrong_and_show_the_format(text, problem):
    with pytest.raises(SymbolError) as info:
        OptionSymbol.parse(text)
    message = str(info.value)
    assert problem in message
    assert f"bad option symbol {text!r}" in message
    assert SYMBOL_FORMAT in message and "NIFTY:2024-10-31:OPT:24350:PE" in message


def test_symbol_errors_are_value_errors_and_non_strings_are_refused():
    assert issubclass(SymbolError, ValueError)
    with pytest.raises(SymbolError, match="must be a string, got int"):
        OptionSymbol.parse(24350)  # type: ignore[arg-type]


@pytest.mark.parametrize("root, expiry, strike, option_type, problem", [
    ("nifty", date(2024, 10, 31), 24350, "PE", "root 'nifty' must be upper-case"),
    ("NIFTY", datetime(2024, 10, 31, 15, 30), 24350, "PE", "must be a datetime.date"),
    ("NIFTY", "2024-10-31", 24350, "PE", "must be a datetime.date"),
    ("NIFTY", date(2024, 10, 31), 0, "PE", "must be a positive finite number"),
    ("NIFTY", date(2024, 10, 31), -50.0, "PE", "must be a positive finite number"),
    ("NIFTY", date(2024, 10, 31), math.nan, "PE", "must be a positive finite number"),
    ("NIFTY", date(2024, 10, 31), math.inf, "PE", "must be a positive finite number"),
    ("NIFTY", date(2024, 10, 31), True, "PE", "must be a number"),
    ("NIFTY", date(2024, 10, 31), "24350", "PE", "must be a number"),
    ("NIFTY", date(2024, 10, 31), 24350, "XX", "unknown option type 'XX' (use CE or PE)"),
])
def test_contracts_are_checked_when_built(root, expiry, strike, option_type, problem):
    for build in (OptionSymbol, format_symbol):
        with pytest.raises(SymbolError, match="bad option contract") as info:
            build(root, expiry, strike, option_type)
        assert problem in str(info.value) and SYMBOL_FORMAT in str(info.value)


def test_symbols_are_immutable():
    sym = OptionSymbol.parse("NIFTY:2024-10-31:OPT:24350:PE")
    with pytest.raises(AttributeError):
        sym.strike = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("dataset, root", [
    ("SIM-NIFTY", "NIFTY"), ("NIFTY", "NIFTY"), ("NIFTY50", "NIFTY"), ("NIFTY 50", "NIFTY"),
    ("nifty 50", "NIFTY"), ("Nifty_50", "NIFTY"), (" NIFTY-50 ", "NIFTY"), ("SIM_NIFTY 50", "NIFTY"),
    ("SIM-BANKNIFTY", "BANKNIFTY"), ("BANKNIFTY", "BANKNIFTY"), ("Bank Nifty", "BANKNIFTY"),
    ("^NSEI", "NSEI"), ("FINNIFTY", "FINNIFTY"), ("SIMNIFTY", "SIMNIFTY"), ("XSIM-NIFTY", "XSIMNIFTY"),
])
def test_underlying_root_of_dataset_symbols(dataset, root):
    assert underlying_root(dataset) == root


@pytest.mark.parametrize("dataset", ["", "   ", "---", "SIM-"])
def test_underlying_root_needs_letters_or_digits(dataset):
    with pytest.raises(SymbolError, match="has no letters or digits"):
        underlying_root(dataset)
