"""Per-day files: layout, roundtrip, atomic replacement, NotFound, date validation."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from storage import atomic
from storage.dayfiles import (
    DIAGNOSTICS,
    TRADES_DAILY,
    day_dir,
    day_files,
    list_days,
    read_day,
    write_day,
    write_day_files,
)
from storage.errors import NotFound


def trades_daily(date: str, pnl: str = "38.70") -> dict[str, Any]:
    """Shaped like seed 000's trades_daily.json."""
    return {
        "date": date,
        "summary": {"total_trades": 1, "total_pnl": pnl, "winning_trades": 1,
                    "losing_trades": 0, "win_rate": "100.00"},
        "trades": [{
            "trade_id": "entry-2-pos1", "position_id": "entry-2-pos1", "re_entry_num": 0,
            "symbol": "NIFTY:2024-10-31:OPT:24350:PE", "side": "sell", "quantity": 1,
            "entry_price": "154.70", "entry_time": f"{date}T09:44:28+05:30",
            "exit_price": "116.00", "exit_time": f"{date}T15:25:00+05:30", "pnl": pnl,
            "entry_flow_ids": ["exec_001", "exec_002"], "exit_flow_ids": ["exec_010"],
            "entry_trigger": "entry-2", "exit_reason": "square_off",
        }],
    }


def diagnostics(date: str) -> dict[str, Any]:
    return {"events_history": {"exec_001": {
        "execution_id": "exec_001", "parent_execution_id": None,
        "timestamp": f"{date}T09:44:28+05:30", "event_type": "ENTRY", "node_id": "entry-2",
        "evaluated_conditions": [{"lhs_value": 66.67, "operator": ">", "rhs_value": 30,
                                  "result": True}],
    }}}


def test_roundtrip_and_layout(tmp_path: Path) -> None:
    size = write_day(tmp_path, "2024-10-24", trades_daily("2024-10-24"), diagnostics("2024-10-24"))
    folder = tmp_path / "days" / "2024-10-24"
    assert sorted(p.name for p in folder.iterdir()) == [DIAGNOSTICS, TRADES_DAILY]
    assert size == sum(p.stat().st_size for p in folder.iterdir())
    assert json.loads(gzip.decompress((folder / TRADES_DAILY).read_bytes())) == \
        trades_daily("2024-10-24")
    assert read_day(tmp_path, "2024-10-24") == (trades_daily("2024-10-24"),
                                               diagnostics("2024-10-24"))
    files = day_files(tmp_path, "2024-10-24")
    assert files.trades_daily == folder / TRADES_DAILY
    assert files.diagnostics == folder / DIAGNOSTICS


def test_rewrite_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    for pnl in ("1.00", "2.00", "3.00"):
        write_day(tmp_path, "2024-10-24", trades_daily("2024-10-24", pnl), diagnostics("x"))
    assert read_day(tmp_path, "2024-10-24")[0]["summary"]["total_pnl"] == "3.00"
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(atomic.TEMP_SUFFIX)]
    assert leftovers == []


def test_failed_write_keeps_previous_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_day(tmp_path, "2024-10-24", trades_daily("2024-10-24", "1.00"), diagnostics("a"))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_day(tmp_path, "2024-10-24", trades_daily("2024-10-24", "2.00"), diagnostics("b"))
    monkeypatch.undo()
    assert read_day(tmp_path, "2024-10-24") == (trades_daily("2024-10-24", "1.00"),
                                               diagnostics("a"))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(atomic.TEMP_SUFFIX)]


def test_list_days_sorted_and_complete_only(tmp_path: Path) -> None:
    assert list_days(tmp_path) == []
    for date in ("2024-10-25", "2024-10-24", "2024-11-01"):
        write_day(tmp_path, date, trades_daily(date), diagnostics(date), fsync=False)
    half = tmp_path / "days" / "2024-10-28"
    half.mkdir()
    (half / DIAGNOSTICS).write_bytes(b"")  # crash between the two files
    (tmp_path / "days" / "notes").mkdir()
    assert list_days(tmp_path) == ["2024-10-24", "2024-10-25", "2024-11-01"]
    with pytest.raises(NotFound):
        read_day(tmp_path, "2024-10-28")


def test_missing_day_and_missing_backtest(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        read_day(tmp_path, "2024-10-24")
    with pytest.raises(NotFound):
        day_files(tmp_path, "2024-10-24")
    with pytest.raises(NotFound):
        write_day(tmp_path / "deleted", "2024-10-24", {}, {})
    assert not (tmp_path / "deleted").exists()


@pytest.mark.parametrize("date", ["../etc", "2024-13-01", "2024-02-30", "24-10-2024",
                                  "2024-10-24/..", "", "2024-1-01"])
def test_bad_dates_rejected(tmp_path: Path, date: str) -> None:
    with pytest.raises(ValueError):
        day_dir(tmp_path, date)
    with pytest.raises(ValueError):
        write_day(tmp_path, date, {}, {})


def test_write_day_files_into_any_directory(tmp_path: Path) -> None:
    target = tmp_path / "out" / "2024-10-24"
    size = write_day_files(target, trades_daily("2024-10-24"), diagnostics("2024-10-24"))
    assert size == (target / TRADES_DAILY).stat().st_size + (target / DIAGNOSTICS).stat().st_size
