"""The CLI's day-file writer: a child process writes batches of days; errors come back."""

from __future__ import annotations

import gzip
import json
from types import SimpleNamespace

import pytest

from services.engine.daywriter import DayFileWriter


def _day(date: str, n: int) -> SimpleNamespace:
    trades = {"date": date, "summary": {"total_trades": n}, "trades": [{"trade_id": f"t{k}"} for k in range(n)]}
    diags = {"date": date, "events_history": {}}
    return SimpleNamespace(date=date, trades_daily=lambda: trades, diagnostics_export=lambda: diags)


def test_every_day_is_written_in_batches(tmp_path):
    writer = DayFileWriter(tmp_path, batch_days=3, max_pending_batches=1)
    dates = [f"2024-01-{d:02d}" for d in range(1, 11)]  # 10 days: 3 full batches and a rest
    for k, date in enumerate(dates):
        writer.submit(_day(date, k))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == dates
    for k, date in enumerate(dates):
        doc = json.loads(gzip.decompress((tmp_path / date / "trades_daily.json.gz").read_bytes()))
        assert len(doc["trades"]) == k
        assert (tmp_path / date / "diagnostics_export.json.gz").is_file()
    assert set(writer.sizes) == set(dates) and all(v > 0 for v in writer.sizes.values())


def test_a_write_error_in_the_child_reaches_close(tmp_path):
    (tmp_path / "2024-01-02").write_text("a file where the day's folder must go")
    writer = DayFileWriter(tmp_path, batch_days=2)
    for date in ("2024-01-01", "2024-01-02", "2024-01-03"):
        writer.submit(_day(date, 1))
    with pytest.raises(OSError):
        writer.close()
    assert (tmp_path / "2024-01-01" / "trades_daily.json.gz").is_file()  # the day before it is there
