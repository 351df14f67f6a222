"""End to end through the real engine (services.engine on port 0, SIM-NIFTY): REST, SSE, ZIP."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from .conftest import StartGateway, events_of, parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def real(start_gateway: StartGateway, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    from services.engine.core.catalog import Catalog
    from services.engine.server import create_server
    from services.engine.settings import EngineSettings

    data = tmp_path_factory.mktemp("engine-data")
    Catalog(data).load("SIM-NIFTY", None, None)
    settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=data, store_dir=data / "store", max_concurrent=2,
                              fsync=False, shutdown_grace_seconds=0.5)
    engine = await create_server(settings, "127.0.0.1:0")
    await engine.start()
    try:
        yield await start_gateway(f"127.0.0.1:{engine.port}")
    finally:
        await engine.stop(0.2)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def finished(real: str) -> dict[str, Any]:
    """One completed backtest: its id and its full event stream."""
    strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json={"strategy": strategy, "strategyId": "rsi", "symbol": "SIM-NIFTY",
                                                    "startDate": "2024-01-01", "endDate": "2024-01-12"})
        assert r.status_code == 200, r.text
        started = r.json()
        stream = await c.get(started["stream_url"])
        assert stream.status_code == 200
    return {"id": started["backtest_id"], "total_days": started["total_days"], "text": stream.text}


async def test_a_run_streams_every_event_once(finished: dict[str, Any]) -> None:
    events = events_of(parse_sse(finished["text"]))
    ids = [int(e["id"]) for e in events]
    assert ids == list(range(1, len(ids) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "backtest_started" and kinds[-1] == "backtest_completed"
    assert kinds.count("day_completed") == finished["total_days"]
    trades = [json.loads(e["data"])["trade_update"]["trade"] for e in events if e["event"] == "trade_update"]
    completed = json.loads(events[-1]["data"])["backtest_completed"]
    assert completed["overall_summary"]["total_trades"] == len(trades) > 0


async def test_resume_gives_exactly_the_rest(real: str, finished: dict[str, Any]) -> None:
    blocks = events_of(parse_sse(finished["text"]))
    middle = len(blocks) // 2
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.get(f"/api/v1/backtests/{finished['id']}/stream", headers={"last-event-id": str(middle)})
        assert events_of(parse_sse(r.text)) == blocks[middle:]
        end = await c.get(f"/api/v1/backtests/{finished['id']}/stream", headers={"last-event-id": str(len(blocks))})
        assert end.status_code == 204
        beyond = await c.get(f"/api/v1/backtests/{finished['id']}/stream?after_event_id={len(blocks) + 1}")
        assert beyond.status_code == 400 and beyond.json()["code"] == 11  # OUT_OF_RANGE
        gone = await c.get("/api/v1/backtests/bt_nope/stream")
        assert gone.status_code == 404


async def test_the_batched_route_carries_the_same_events(real: str, finished: dict[str, Any]) -> None:
    blocks = events_of(parse_sse(finished["text"]))
    expected = [json.loads(b["data"]) for b in blocks]
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.get(f"/api/v1/backtests/{finished['id']}/stream:batches",
                        headers={"accept": "application/x-ndjson"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        batches = [json.loads(line)["result"]["events"] for line in r.text.splitlines()]
        assert [e for b in batches for e in b] == expected
        r = await c.get(f"/api/v1/backtests/{finished['id']}/stream:batches?max_events=7",
                        headers={"last-event-id": "10"})
        sse = events_of(parse_sse(r.text))
        got = [e for b in sse for e in json.loads(b["data"])["events"]]
        assert got == expected[10:] and all(len(json.loads(b["data"])["events"]) <= 7 for b in sse)
        assert [int(b["id"]) for b in sse] == [int(json.loads(b["data"])["events"][-1]["event_id"]) for b in sse]


async def test_day_zip_matches_the_days_trades(real: str, finished: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        days = (await c.get(f"/api/v1/backtests/{finished['id']}")).json()["daily_summaries"]
        day = next(d for d in days if d["trades"] > 0)
        r = await c.get(f"/api/v1/backtests/{finished['id']}/days/{day['date']}/archive.zip")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"] == f'attachment; filename="backtest_{day["date"]}.zip"'
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            docs = {Path(n).name: json.loads(gzip.decompress(zf.read(n))) for n in zf.namelist()}
        assert set(docs) == {"trades_daily.json.gz", "diagnostics_export.json.gz"}
        assert len(docs["trades_daily.json.gz"]["trades"]) == day["trades"]
        flows = {f for t in docs["trades_daily.json.gz"]["trades"] for f in t["entry_flow_ids"] + t["exit_flow_ids"]}
        assert flows <= set(docs["diagnostics_export.json.gz"]["events_history"])
        detail = (await c.get(f"/api/v1/backtests/{finished['id']}/days/{day['date']}")).json()
        assert len(detail["trades"]) == day["trades"]
        whole = await c.get(f"/api/v1/backtests/{finished['id']}/archive.zip")
        assert whole.status_code == 200
        assert whole.headers["content-disposition"] == f'attachment; filename="backtest_{finished["id"]}.zip"'
        assert zipfile.ZipFile(io.BytesIO(whole.content)).testzip() is None


async def test_engine_validation_errors_keep_their_details(real: str) -> None:
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json={"strategy": {}, "symbol": "SIM-NIFTY"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 3
    violations = body["details"][0]["field_violations"]
    assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert any(v["field"].startswith("strategy") for v in violations)


@pytest.mark.parametrize("body, field", [
    # JSON nested a thousand deep: the parser's recursion limit, a 400 (was a 500).
    ('{"strategy": ' + '[' * 1000 + ']' * 1000 + '}', "body"),
    ('{"strategy": {"entries": [{"when": ' + '{"all": [' * 400 + '{}' + ']}' * 400 + '}]}}', "body"),
    ({"initial_capital": "NaN"}, "initial_capital"),
    ({"commission_pct": "Infinity"}, "commission_pct"),
    ({"slippage_pct": "-Infinity"}, "slippage_pct"),
    ({"timeframe": "0m"}, "timeframe"),
    ({"strategy": {"execution": {"initial_capital": "NaN"}}}, "initial_capital"),
    ({"strategy": {"execution": {"timeframe": "0h"}}}, "timeframe"),
])
async def test_bad_numbers_and_deep_bodies_are_400_with_the_field(real: str, body: Any, field: str) -> None:
    strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        if isinstance(body, str):
            r = await c.post("/api/v1/backtests", content=body, headers={"content-type": "application/json"})
        else:
            doc = {"strategy": strategy, "symbol": "SIM-NIFTY", "start_date": "2024-01-01", "end_date": "2024-01-05"}
            for key, value in body.items():
                if key == "strategy":
                    doc["strategy"] = {**strategy, "execution": {**strategy["execution"], **value["execution"]}}
                else:
                    doc[key] = value
            r = await c.post("/api/v1/backtests", json=doc)
    assert r.status_code == 400, r.text
    assert field in r.text, r.text


@pytest.mark.parametrize("length", [201, 5000, 20000])
async def test_an_id_of_any_length_is_not_found(real: str, length: int) -> None:
    """Not a 429 (RESOURCE_EXHAUSTED: the echoed id made gRPC's trailers too big)."""
    bid = "bt_" + "x" * length
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        for r in (await c.get(f"/api/v1/backtests/{bid}"), await c.get(f"/api/v1/backtests/{bid}/days/2024-01-02"),
                  await c.post(f"/api/v1/backtests/{bid}:cancel"), await c.get(f"/api/v1/backtests/{bid}/stream"),
                  await c.get(f"/api/v1/backtests/{bid}/archive.zip")):
            assert r.status_code == 404, r.text[:300]
            assert r.json()["code"] == 5 and len(r.text) < 2000


async def test_a_long_strategy_id_is_refused(real: str) -> None:
    strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json={"strategy": strategy, "symbol": "SIM-NIFTY",
                                                    "strategy_id": "s" * 201})
    assert r.status_code == 400 and "strategy_id" in r.text, r.text[:300]


@pytest.mark.parametrize("grow, field", [
    (lambda s: s["indicators"].extend({"id": f"sma{k}", "kind": "sma", "period": 10} for k in range(5000)), "strategy.indicators"),
    (lambda s: s.update(description="x" * 300_000), "strategy"),
    (lambda s: s["entries"].extend({**s["entries"][0], "id": f"e{k}"} for k in range(60)), "strategy.entries"),
])
async def test_oversized_strategies_are_400_before_anything_is_computed(real: str, grow: Any, field: str) -> None:
    strategy = json.loads((REPO / "examples" / "strategies" / "rsi_reversion.json").read_text())
    grow(strategy)
    async with httpx.AsyncClient(base_url=real, timeout=60) as c:
        r = await c.post("/api/v1/backtests", json={"strategy": strategy, "symbol": "SIM-NIFTY"})
    assert r.status_code == 400, r.text[:300]
    violations = r.json()["details"][0]["field_violations"]
    assert violations[0]["field"].startswith(field), violations
