"""Option strategies through the real gRPC service: the stream, GetDay, datasets and bad input."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from datetime import date

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import strategy_pb2

from services.engine.settings import EngineSettings
from tests.engine.conftest import EXAMPLES, collect, kinds
from tests.engine.test_service import bad_request_fields

from .chain_data import minute_bars, write_sample_chain


def option_request(days=("2024-10-01", "2024-10-04"), name="short_straddle.json", **kw) -> pb.StartBacktestRequest:
    strat = json_format.Parse((EXAMPLES / name).read_text(), strategy_pb2.Strategy())
    return pb.StartBacktestRequest(strategy=strat, strategy_id=kw.pop("strategy_id", "straddle"),
                                   symbol=kw.pop("symbol", "SIM-NIFTY"), start_date=days[0], end_date=days[1], **kw)


async def test_a_straddle_streams_option_trades_positions_and_strike_selections(stub):
    resp = await stub.StartBacktest(option_request(tick_interval=30))
    events = await collect(stub, resp.backtest_id)
    assert kinds(events)[-1] == "backtest_completed"
    trades = [e.trade_update.trade for e in events if e.HasField("trade_update")]
    done = [e.day_completed for e in events if e.HasField("day_completed")]
    assert len(done) == 3 and len(trades) == 6  # 2 October is a holiday; 2 legs a day
    for t in trades:
        assert t.symbol.startswith("NIFTY:2024-10-") and t.symbol.endswith(f":{t.option_type}")
        assert t.leg_id in ("ce", "pe") and t.trade_id == f"{t.position_id}-{t.leg_id}"
        assert t.lot_size == 25 and t.lots == 1 and t.quantity == 25  # NIFTY's lot in October 2024
        assert t.underlying_at_entry > 20000 and t.iv_at_entry > 0
    assert sum(len(d.positions) for d in done) == 3
    for d in done:
        for p in d.positions:
            legs = [t for t in trades if t.position_id == p.position_id]
            assert float(p.pnl) == pytest.approx(sum(float(t.pnl) for t in legs), abs=0.011)
    entry = next(e.node_event for e in events if e.HasField("node_event") and e.node_event.event_type == "ENTRY")
    assert [s.leg_id for s in entry.strike_selections] == ["ce", "pe"]
    assert entry.strike_selections[0].candidates > 10 and entry.strike_selections[0].premium > 0
    ticks = [e.tick_update for e in events if e.HasField("tick_update") and e.tick_update.open_positions]
    assert ticks and all(p.leg_id and p.strike and p.underlying_price for t in ticks for p in t.open_positions)
    # GetDay reads the day file back with the proto's names; the file itself has the seeds'.
    day = done[0].date
    detail = await stub.GetDay(pb.GetDayRequest(backtest_id=resp.backtest_id, date=day))
    assert len(detail.positions) == 1 and all(t.underlying_at_entry > 0 for t in detail.trades)
    blob = b"".join([b.data async for b in stub.DownloadDay(pb.DownloadDayRequest(backtest_id=resp.backtest_id,
                                                                                   date=day))])
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        daily = json.loads(gzip.decompress(z.read("trades_daily.json.gz")))
    assert {"nifty_spot_at_entry", "nifty_spot_at_exit", "strike", "option_type"} <= set(daily["trades"][0])


async def test_option_bad_input_is_invalid_argument_with_the_field(stub):
    bad = option_request()
    bad.strategy.entries[0].legs[0].lots = 0
    bad.strategy.entries[0].legs[1].delta = 1.5
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["strategy.entries[0].legs[0].lots", "strategy.entries[0].legs[1].delta"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(option_request(days=("2018-06-01", "2018-06-08")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["strategy.entries[0].legs[0].expiry.kind",
                                              "strategy.entries[0].legs[1].expiry.kind"]
    assert "2019-02-11" in info.value.details()


@pytest.fixture
async def chain_stub(data_dir, tmp_path):
    """An engine whose data dir has SIM-NIFTY (shared), NIFTY (a user file, no chain) and NIFTY50
    (a user file with an option chain missing one bar)."""
    from services.engine.server import create_server

    mine = tmp_path / "data"
    (mine / "datasets").mkdir(parents=True)
    os.symlink(data_dir / "datasets" / "SIM-NIFTY", mine / "datasets" / "SIM-NIFTY")
    days = [date(2024, 1, 22), date(2024, 1, 23)]
    bars = minute_bars(days, per_day=30)
    for sym in ("NIFTY", "NIFTY50", "FOO"):
        bars.to_frame().to_csv(mine / "datasets" / f"{sym}.csv", index_label="timestamp")
        (mine / "datasets" / f"{sym}.json").write_text(json.dumps({"calendar": "XBOM", "timezone": "Asia/Kolkata"}))
    strikes = np.arange(21000.0, 22050.0, 50.0)
    atm = strikes[np.argmin(np.abs(strikes - float(bars.close[4])))]
    write_sample_chain(mine / "datasets" / "NIFTY50.options.parquet", bars, [date(2024, 1, 25)], strikes,
                       drop=[(date(2024, 1, 25), atm, "CE", 30 + 5)])  # day 2's 09:20 fill
    write_sample_chain(mine / "datasets" / "FOO.options.parquet", bars, [date(2024, 1, 25)], strikes)
    settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=mine, store_dir=tmp_path / "store", fsync=False,
                              shutdown_grace_seconds=0.5)
    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
        yield pb_grpc.BacktestServiceStub(channel), atm
    await eng.stop(0.2)


async def test_datasets_say_where_options_come_from_and_a_chain_gap_fails_the_run(chain_stub):
    stub, atm = chain_stub
    listed = {d.symbol: d.options for d in (await stub.ListDatasets(pb.ListDatasetsRequest())).datasets}
    assert listed == {"SIM-NIFTY": "synthetic", "NIFTY": "", "NIFTY50": "chain", "FOO": "chain"}
    with pytest.raises(grpc.aio.AioRpcError) as info:  # a chain, but no exchange rules for its root
        await stub.StartBacktest(option_request(days=("2024-01-22", "2024-01-23"), symbol="FOO"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no NSE contract rules for root 'FOO'" in info.value.details()
    req = option_request(days=("2024-01-22", "2024-01-23"), symbol="NIFTY")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.StartBacktest(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(info.value) == ["strategy.entries[0].legs"]
    assert "has no options" in info.value.details()
    resp = await stub.StartBacktest(option_request(days=("2024-01-22", "2024-01-23"), symbol="NIFTY50"))
    events = await collect(stub, resp.backtest_id)
    assert kinds(events)[-1] == "backtest_failed"
    failed = events[-1].backtest_failed
    assert f"NIFTY:2024-01-25:OPT:{int(atm)}:CE has no bar at 2024-01-23T09:20:00+05:30" in failed.error_message
    # The first day was run and published before the failure, and stays readable.
    first = [e.day_completed for e in events if e.HasField("day_completed")]
    assert [d.date for d in first] == ["2024-01-22"]
    detail = await stub.GetDay(pb.GetDayRequest(backtest_id=resp.backtest_id, date="2024-01-22"))
    assert len(detail.trades) == 2 and detail.trades[0].symbol.startswith("NIFTY:2024-01-25:OPT:")
