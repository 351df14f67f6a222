"""DatasetService over a real grpc.aio engine: uploads in chunks (CSV, CSV.gz, Parquet), get, list,
delete, refusals with their details, limits and quotas, cancelled uploads, clashes, isolation
between users, and runs (backtests, optimizations, option legs) on uploaded datasets, across an
engine restart."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import io
import json
import os
from datetime import date
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
from google.api import httpbody_pb2
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from hindsight.v1 import datasets_pb2 as dpb
from hindsight.v1 import datasets_pb2_grpc as dpb_grpc
from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import optimization_pb2_grpc as opb_grpc

from tests.engine.conftest import collect, kinds, start_request
from tests.engine.optimize.test_service import config as opt_config
from tests.engine.options.chain_data import minute_bars, write_sample_chain
from tests.engine.options.test_option_service import option_request

from .files import DAYS, csv_text, session_rows

CSV = "text/csv"


def file_bytes(rows=None) -> bytes:
    return csv_text(rows if rows is not None else session_rows(DAYS, 375)).encode()


def messages(symbol: str, data: bytes, *, size: int = 65536, content_type: str = CSV, **fields):
    first = dpb.UploadDatasetRequest(symbol=symbol, chunk=httpbody_pb2.HttpBody(content_type=content_type,
                                                                                 data=data[:size]), **fields)
    out = [first]
    for i in range(size, len(data), size):
        out.append(dpb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + size])))
    return out


async def upload(ds, symbol: str, data: bytes, md=(), **kw) -> dpb.DatasetDetail:
    kw.setdefault("calendar", "XBOM")
    return await ds.UploadDataset(iter_async(messages(symbol, data, **kw)), metadata=md)


async def iter_async(items):
    for item in items:
        yield item


async def failure(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


def details(err: grpc.aio.AioRpcError) -> dict:
    """{"violations": [(field, description)], "info": ErrorInfo | None, "report": QualityReport | None}"""
    status = rpc_status.from_call(err)
    out = {"violations": [], "info": None, "report": None, "resource": None}
    for d in status.details if status is not None else ():
        br, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
        report, resource = dpb.QualityReport(), error_details_pb2.ResourceInfo()
        if d.Unpack(br):
            out["violations"] += [(v.field, v.description) for v in br.field_violations]
        elif d.Unpack(info):
            out["info"] = info
        elif d.Unpack(report):
            out["report"] = report
        elif d.Unpack(resource):
            out["resource"] = resource
    return out


def left_files(data_dir: Path) -> list[str]:
    """Every file under the users' folders (uploads in progress included)."""
    users = data_dir / "users"
    return sorted(str(p.relative_to(users)) for p in users.rglob("*") if p.is_file()) if users.exists() else []


@contextlib.asynccontextmanager
async def serving(settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            yield eng, channel
    finally:
        await eng.stop(0.2)


@pytest.fixture
async def channel(engine):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as ch:
        yield ch


@pytest.fixture
def ds(channel):
    return dpb_grpc.DatasetServiceStub(channel)


@pytest.fixture
def bt(channel):
    return pb_grpc.BacktestServiceStub(channel)


# --- upload, get, list, delete ------------------------------------------------------------------

async def test_upload_get_list_and_delete(ds, bt, settings):
    rows = session_rows(DAYS, 375)
    detail = await upload(ds, "MYNIFTY", file_bytes(rows), size=10_000, description="my minute bars")
    d = detail.dataset
    assert (d.symbol, d.source, d.owner, d.timeframe, d.bars, d.timezone, d.calendar) == (
        "MYNIFTY", "upload", "local", "1m", 1500, "Asia/Kolkata", "XBOM")
    assert (d.first_date, d.last_date, d.description, d.options) == ("2024-03-04", "2024-03-07", "my minute bars", "")
    assert d.quality_score == 100 and d.stored_bytes > 1500 * 48 and d.created_at.seconds > 0
    assert detail.quality.usable and detail.quality.rows == 1500 and len(detail.quality.passed) == 15
    assert [c.timestamp for c in detail.head[:2]] == ["2024-03-04T09:15:00+05:30", "2024-03-04T09:16:00+05:30"]
    assert detail.tail[-1].timestamp == "2024-03-07T15:29:00+05:30" and detail.tail[-1].close == rows[-1][4]
    assert len(detail.head) == len(detail.tail) == 5

    got = await ds.GetDataset(dpb.GetDatasetRequest(symbol="MYNIFTY", preview_rows=3))
    assert len(got.head) == len(got.tail) == 3 and got.dataset == d and got.quality == detail.quality
    listed = (await bt.ListDatasets(pb.ListDatasetsRequest())).datasets
    assert [(x.symbol, x.source) for x in listed] == [("MYNIFTY", "upload"), ("SIM-NIFTY", "builtin")]
    assert listed[0] == d
    sim = await ds.GetDataset(dpb.GetDatasetRequest(symbol="SIM-NIFTY"))
    assert not sim.HasField("quality") and len(sim.head) == 5 and sim.dataset.options == "synthetic"
    assert sim.head[0].timestamp.endswith("+05:30")
    for bad in (101, -1):
        err = await failure(ds.GetDataset(dpb.GetDatasetRequest(symbol="MYNIFTY", preview_rows=bad)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and details(err)["violations"][0][0] == "preview_rows"

    err = await failure(ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="SIM-NIFTY")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="MYNIFTY"))).symbol == "MYNIFTY"
    err = await failure(ds.GetDataset(dpb.GetDatasetRequest(symbol="MYNIFTY")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await failure(ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="MYNIFTY")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert left_files(settings.data_dir) == []


async def test_gzip_and_parquet_uploads_by_content_or_type(ds):
    rows = session_rows(DAYS[:2], 375)
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize("Asia/Kolkata")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    gz = gzip.compress(file_bytes(rows))
    a = await upload(ds, "GZ", gz, content_type="application/gzip")
    b = await upload(ds, "PQ", buf.getvalue(), content_type="application/vnd.apache.parquet")
    c = await upload(ds, "OCTET", gz, content_type="application/octet-stream; charset=binary")
    e = await upload(ds, "UTF8", file_bytes(rows), content_type="text/csv; charset=utf-8")
    f = await upload(ds, "NOTYPE", buf.getvalue(), content_type="")
    for detail in (a, b, c, e, f):
        assert detail.dataset.bars == 750 and detail.quality.usable
        assert [x.close for x in detail.tail] == [x.close for x in a.tail]


async def test_an_upload_with_errors_is_refused_with_each_error_and_the_report(ds, settings):
    rows = session_rows(DAYS[:1], 50)
    rows[3][4] = "abc"
    rows[10][2] = rows[10][3] - 1
    err = await failure(upload(ds, "BAD", file_bytes(rows)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = details(err)
    assert [f for f, _ in got["violations"]] == ["chunk", "chunk"]
    assert got["violations"][0][1].startswith("line 5, column close: 'abc' is not a number (unparsable_values): ")
    assert got["violations"][1][1].startswith("line 12, column high: high")
    report = got["report"]
    assert not report.usable and report.rows == 50
    assert [f.check for f in report.findings][:2] == ["unparsable_values", "ohlc_inconsistent"]
    assert err.details().startswith("chunk: line 5, column close: 'abc' is not a number")
    assert left_files(settings.data_dir) == []
    assert (await failure(ds.GetDataset(dpb.GetDatasetRequest(symbol="BAD")))).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64,
    json.dumps([{"timestamp": "2024-03-04 09:15:00", "open": 1}] * 200).encode(),
    bytes(np.random.default_rng(3).integers(0, 256, 100_000, dtype=np.uint8)),
])
async def test_bytes_that_are_no_table_are_invalid_argument(ds, settings, content):
    err = await failure(upload(ds, "JUNK", content, size=8192))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a CSV or Parquet file" in err.details()
    assert details(err)["violations"][0][0] == "chunk"
    assert left_files(settings.data_dir) == []


async def test_a_truncated_gzip_is_invalid_argument(ds, settings):
    packed = gzip.compress(file_bytes())
    err = await failure(upload(ds, "CUT", packed[: len(packed) * 2 // 3]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in err.details()
    assert left_files(settings.data_dir) == []


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=xyz", "application/json"])
async def test_a_form_or_json_body_is_refused_with_how_to_send_the_file(ds, content_type):
    err = await failure(upload(ds, "FORM", file_bytes(), content_type=content_type))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, text)] = details(err)["violations"]
    assert field == "chunk.content_type" and "--data-binary @f.csv -H 'Content-Type: text/csv'" in text


async def test_metadata_in_a_later_message_is_refused(ds):
    items = messages("LATE", file_bytes(), size=20_000, calendar="XBOM")
    items[2].calendar = "XNYS"
    err = await failure(ds.UploadDataset(iter_async(items)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err)["violations"][0][0] == "calendar" and "message 3" in err.details()


@pytest.mark.parametrize("fields,field", [
    ({"symbol": ""}, "symbol"), ({"symbol": "../up"}, "symbol"), ({"symbol": "A" * 41}, "symbol"),
    ({"calendar": "NOPE"}, "calendar"), ({"timezone": "Mars/Base"}, "timezone"),
    ({"timeframe": "7x"}, "timeframe"), ({"format": "xlsx"}, "format"),
])
async def test_bad_options_name_their_field(ds, settings, fields, field):
    symbol = fields.pop("symbol", "OPT")
    err = await failure(upload(ds, symbol, file_bytes(), **fields))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and details(err)["violations"][0][0] == field
    assert left_files(settings.data_dir) == []


async def test_a_message_that_does_not_decode_stops_the_upload(channel, settings):
    first = messages("RAW", file_bytes(), size=20_000)[0].SerializeToString()
    call = channel.stream_unary("/hindsight.v1.DatasetService/UploadDataset", request_serializer=lambda b: b,
                                response_deserializer=dpb.DatasetDetail.FromString)
    err = await failure(call(iter_async([first, b"\xff\xff\xff garbage"])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "cannot decode" in str(details(err)["violations"])
    await asyncio.sleep(0.2)
    assert left_files(settings.data_dir) == []


# --- limits ------------------------------------------------------------------------------------

async def test_an_upload_over_the_limit_is_resource_exhausted_and_leaves_nothing(settings):
    small = dataclasses.replace(settings, max_upload_bytes=50_000)
    async with serving(small) as (_eng, ch):
        err = await failure(upload(dpb_grpc.DatasetServiceStub(ch), "BIG", file_bytes(), size=16_384))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = details(err)["info"]
    assert (info.reason, info.domain) == ("UPLOAD_TOO_LARGE", "hindsight")
    assert left_files(settings.data_dir) == []


async def test_stored_bytes_count_uploads_and_a_user_over_the_quota_is_refused(settings):
    async with serving(settings) as (_eng, ch):
        ds, bt = dpb_grpc.DatasetServiceStub(ch), pb_grpc.BacktestServiceStub(ch)
        stored = (await upload(ds, "Q1", file_bytes())).dataset.stored_bytes
        caller = await bt.GetCaller(pb.GetCallerRequest())
        assert {q.name: q.used for q in caller.quotas}["stored_bytes"] == stored
    # The limit reached: uploads and runs are refused.
    full = dataclasses.replace(settings, max_stored_bytes_per_user=stored)
    async with serving(full) as (_eng, ch):
        ds, bt = dpb_grpc.DatasetServiceStub(ch), pb_grpc.BacktestServiceStub(ch)
        err = await failure(upload(ds, "Q2", file_bytes()))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and details(err)["info"].reason == "STORED_BYTES"
        err = await failure(bt.StartBacktest(start_request()))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "datasets" in err.details()
    # Some room left, but less than the upload: stopped while it streams.
    room = dataclasses.replace(settings, max_stored_bytes_per_user=stored + 30_000)
    async with serving(room) as (_eng, ch):
        err = await failure(upload(dpb_grpc.DatasetServiceStub(ch), "Q3", file_bytes(), size=8192))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and details(err)["info"].reason == "STORED_BYTES"
        assert "left of your stored-bytes quota" in err.details()
    assert [p.split("/")[2] for p in left_files(settings.data_dir)] == ["Q1"] * len(left_files(settings.data_dir))


async def test_a_client_that_cancels_mid_stream_leaves_nothing(ds, settings):
    data = file_bytes()
    sent = asyncio.Event()
    hold = asyncio.Event()

    async def stalled():
        for i, item in enumerate(messages("HALF", data, size=16_384)):
            yield item
            if i == 3:
                sent.set()
                await hold.wait()  # never set: the client gives up here

    call = ds.UploadDataset(stalled())
    await asyncio.wait_for(sent.wait(), 10)
    folder = settings.data_dir / "users" / "local" / "datasets"
    for _ in range(200):  # the engine has the bytes in its temp folder
        if any(p.name.startswith(".upload-") for p in folder.iterdir()) if folder.exists() else False:
            break
        await asyncio.sleep(0.02)
    assert left_files(settings.data_dir)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(250):
        if not left_files(settings.data_dir):
            break
        await asyncio.sleep(0.02)
    assert left_files(settings.data_dir) == []
    assert (await failure(ds.GetDataset(dpb.GetDatasetRequest(symbol="HALF")))).code() == grpc.StatusCode.NOT_FOUND


# --- symbols --------------------------------------------------------------------------------------

async def test_symbols_clash_without_case_with_yours_and_the_servers(ds, settings):
    (settings.data_dir / "datasets" / "SRV.csv").write_text(csv_text(session_rows(DAYS[:1], 10)))
    await upload(ds, "Mine", file_bytes())
    for symbol, whose in (("MINE", "one of your datasets is 'Mine'"), ("sim-nifty", "'SIM-NIFTY'"),
                          ("srv", "'SRV'")):
        err = await failure(upload(ds, symbol, file_bytes()))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS and whose in err.details()


async def test_of_two_concurrent_uploads_of_a_symbol_the_second_to_finish_is_refused(ds, settings):
    data = file_bytes()
    go = {1: asyncio.Event(), 2: asyncio.Event()}

    async def stream(n: int):
        items = messages("TWICE", data, size=32_768, calendar="XBOM")
        yield items[0]
        await go[n].wait()
        for item in items[1:]:
            yield item

    first = asyncio.ensure_future(ds.UploadDataset(stream(1)))
    second = asyncio.ensure_future(ds.UploadDataset(stream(2)))
    folder = settings.data_dir / "users" / "local" / "datasets"
    for _ in range(250):  # both got past the first check (their temp folders exist)
        if folder.exists() and sum(p.name.startswith(".upload-") for p in folder.iterdir()) == 2:
            break
        await asyncio.sleep(0.02)
    go[1].set()
    assert (await first).dataset.symbol == "TWICE"
    go[2].set()
    err = await failure(second)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert [p.name for p in folder.iterdir()] == ["TWICE"]


async def test_users_see_only_their_own_uploads(tokens, engine, channel, settings):
    ds, bt = dpb_grpc.DatasetServiceStub(channel), pb_grpc.BacktestServiceStub(channel)
    alice, bob = tokens["alice"], tokens["bob"]
    mine = await upload(ds, "MINE", file_bytes(), md=alice)
    assert mine.dataset.owner == "alice"

    async def twin(call, missing_call) -> None:
        """B's error for A's dataset is the error for a symbol nobody has."""
        a, b = await failure(call), await failure(missing_call)
        assert a.code() == b.code()
        assert a.details().replace("MINE", "X") == b.details().replace("NOPE", "X")
        assert details(a)["violations"] == [(f, t.replace("NOPE", "MINE")) for f, t in details(b)["violations"]]

    await twin(ds.GetDataset(dpb.GetDatasetRequest(symbol="MINE"), metadata=bob),
               ds.GetDataset(dpb.GetDatasetRequest(symbol="NOPE"), metadata=bob))
    await twin(ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="MINE"), metadata=bob),
               ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="NOPE"), metadata=bob))
    days = ("2024-03-04", "2024-03-07")
    await twin(bt.StartBacktest(start_request(days=days, symbol="MINE"), metadata=bob),
               bt.StartBacktest(start_request(days=days, symbol="NOPE"), metadata=bob))
    opt = opb_grpc.OptimizationServiceStub(channel)
    await twin(opt.StartOptimization(opb.StartOptimizationRequest(config=opt_config(symbol="MINE", days=days)),
                                     metadata=bob),
               opt.StartOptimization(opb.StartOptimizationRequest(config=opt_config(symbol="NOPE", days=days)),
                                     metadata=bob))
    err = await failure(ds.UploadOptionChain(iter_async([dpb.UploadOptionChainRequest(
        symbol="MINE", chunk=httpbody_pb2.HttpBody(data=b"x"))]), metadata=bob))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    theirs = await upload(ds, "MINE", file_bytes(session_rows(DAYS[:2], 375)), md=bob)
    assert theirs.dataset.owner == "bob" and theirs.dataset.bars == 750
    for who, owner, bars in ((alice, "alice", 1500), (bob, "bob", 750)):
        listed = (await bt.ListDatasets(pb.ListDatasetsRequest(), metadata=who)).datasets
        assert [(d.symbol, d.owner, d.bars) for d in listed][0] == ("MINE", owner, bars)
        assert [d.symbol for d in listed] == ["MINE", "SIM-NIFTY"]
    run = await bt.StartBacktest(start_request(days=days, symbol="MINE"), metadata=bob)
    assert run.total_days == 2  # bob's own MINE, not alice's four days


# --- runs on uploads --------------------------------------------------------------------------------

def _normalized(events, symbol: str) -> list[str]:
    """Event bodies without what differs between two runs of one strategy on equal data: the run's
    id and time, and the dataset's symbol."""
    out = []
    for e in events:
        body = pb.BacktestEvent()
        body.CopyFrom(e)
        body.ClearField("backtest_id")
        body.ClearField("emitted_at")
        text = json.dumps(json_format.MessageToDict(body), sort_keys=True)
        out.append(text.replace(e.backtest_id, "ID").replace(symbol, "SYMBOL"))
    return out


async def test_a_backtest_on_an_upload_equals_the_same_file_as_a_server_dataset(ds, bt, settings):
    rows = session_rows(DAYS, 375, seed=11)
    folder = settings.data_dir / "datasets"
    (folder / "SRV.csv").write_bytes(file_bytes(rows))
    (folder / "SRV.json").write_text(json.dumps({"calendar": "XBOM", "timezone": "Asia/Kolkata"}))
    await upload(ds, "UPL", file_bytes(rows))
    days = ("2024-03-04", "2024-03-07")
    results = {}
    for symbol in ("SRV", "UPL"):
        run = await bt.StartBacktest(start_request(days=days, symbol=symbol, name="sma_cross.json"))
        events = await asyncio.wait_for(collect(bt, run.backtest_id), 60)
        assert kinds(events)[-1] == "backtest_completed"
        results[symbol] = _normalized(events, symbol)
    assert sum(1 for e in results["UPL"] if '"tradeUpdate"' in e) > 0
    assert results["UPL"] == results["SRV"]


@pytest.fixture(scope="module")
def sim_copy(tmp_path_factory, data_dir) -> bytes:
    """SIM-NIFTY's bars from December 2023 to December 2024 as a Parquet file's bytes."""
    from services.engine.core.catalog import Catalog

    bars = Catalog(data_dir).load("SIM-NIFTY", date(2023, 12, 1), date(2024, 12, 31))
    frame = bars.to_frame()
    frame.index.name = "timestamp"
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


async def test_an_optimization_on_an_upload_equals_one_on_the_same_bars(ds, channel, sim_copy):
    await upload(ds, "MYSIM", sim_copy, size=1 << 20, content_type="application/octet-stream")
    opt = opb_grpc.OptimizationServiceStub(channel)
    results = []
    for symbol in ("MYSIM", "SIM-NIFTY"):
        oid = (await opt.StartOptimization(opb.StartOptimizationRequest(
            config=opt_config(symbol=symbol), strategy_id="sma"))).optimization_id
        events = [e async for e in opt.StreamOptimization(opb.StreamOptimizationRequest(optimization_id=oid))]
        assert events[-1].WhichOneof("event") == "optimization_completed", events[-1]
        trials = [e.trial_completed.trial for e in events if e.HasField("trial_completed")]
        results.append([(t.number, t.metrics.total_return_pct, t.metrics.total_trades) for t in trials])
    assert len(results[0]) == 9 and any(r[2] for r in results[0])
    assert results[0] == results[1]


async def test_runs_on_an_upload_continue_after_an_engine_restart(settings, sim_copy):
    one = dataclasses.replace(settings, max_concurrent=1)
    days = ("2024-01-01", "2024-12-31")
    async with serving(one) as (_eng, ch):
        ds, bt = dpb_grpc.DatasetServiceStub(ch), pb_grpc.BacktestServiceStub(ch)
        await upload(ds, "MYSIM", sim_copy, size=1 << 20)
        running = (await bt.StartBacktest(start_request(days=days, symbol="MYSIM", name="sma_cross.json")))
        queued = (await bt.StartBacktest(start_request(days=days, symbol="MYSIM", name="sma_cross.json")))
        seen = 0
        async for _ in bt.StreamBacktest(pb.StreamBacktestRequest(backtest_id=running.backtest_id)):
            seen += 1
            if seen >= 200:
                break
    from storage import LocalStore

    with LocalStore(one.store_root) as store:  # the stop left them to the next engine
        assert store.get(running.backtest_id).status == "running"
        assert store.get(queued.backtest_id).status == "queued"
    async with serving(one) as (_eng, ch):
        ds, bt = dpb_grpc.DatasetServiceStub(ch), pb_grpc.BacktestServiceStub(ch)
        assert [d.symbol for d in (await bt.ListDatasets(pb.ListDatasetsRequest())).datasets][0] == "MYSIM"
        assert (await ds.GetDataset(dpb.GetDatasetRequest(symbol="MYSIM"))).dataset.bars > 90_000
        finished = []
        for run in (running, queued):
            events = await asyncio.wait_for(collect(bt, run.backtest_id), 120)
            assert kinds(events)[-1] == "backtest_completed", events[-1]
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            finished.append(_normalized(events, "MYSIM"))
        ref = await bt.StartBacktest(start_request(days=days, symbol="SIM-NIFTY", name="sma_cross.json"))
        reference = _normalized(await asyncio.wait_for(collect(bt, ref.backtest_id), 120), "SIM-NIFTY")
    assert finished[0] == finished[1] == reference


async def test_deleting_a_dataset_leaves_a_run_on_it_working(ds, bt, sim_copy):
    await upload(ds, "GONE", sim_copy, size=1 << 20)
    run = await bt.StartBacktest(start_request(days=("2024-01-01", "2024-12-31"), symbol="GONE",
                                               name="sma_cross.json"))
    first = await collect(bt, run.backtest_id, limit=3)
    assert kinds(first)[0] == "backtest_started"
    await ds.DeleteDataset(dpb.DeleteDatasetRequest(symbol="GONE"))
    events = await asyncio.wait_for(collect(bt, run.backtest_id), 120)
    assert kinds(events)[-1] == "backtest_completed"
    err = await failure(bt.StartBacktest(start_request(days=("2024-01-01", "2024-01-31"), symbol="GONE")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown dataset 'GONE'" in err.details()


# --- option chains -----------------------------------------------------------------------------------

async def chain_messages(symbol: str, path: Path, size: int = 65536):
    data = path.read_bytes()
    for i in range(0, len(data), size):
        yield dpb.UploadOptionChainRequest(symbol=symbol if i == 0 else "", chunk=httpbody_pb2.HttpBody(
            data=data[i:i + size]))


async def test_an_uploaded_option_chain_prices_the_legs(ds, bt, tmp_path):
    days = [date(2024, 1, 22), date(2024, 1, 23)]
    bars = minute_bars(days, per_day=30)
    frame = bars.to_frame()
    frame.index.name = "timestamp"
    buf = io.BytesIO()
    frame.to_parquet(buf)
    await upload(ds, "NIFTY50", buf.getvalue())
    strikes = np.arange(21000.0, 22050.0, 50.0)
    atm = strikes[np.argmin(np.abs(strikes - float(bars.close[4])))]
    gap = write_sample_chain(tmp_path / "gap.parquet", bars, [date(2024, 1, 25)], strikes,
                             drop=[(date(2024, 1, 25), atm, "CE", 30 + 5)])
    assert len(gap)
    detail = await ds.UploadOptionChain(chain_messages("NIFTY50", tmp_path / "gap.parquet"))
    assert detail.dataset.options == "chain"
    listed = {d.symbol: d.options for d in (await bt.ListDatasets(pb.ListDatasetsRequest())).datasets}
    assert listed == {"NIFTY50": "chain", "SIM-NIFTY": "synthetic"}
    run = await bt.StartBacktest(option_request(days=("2024-01-22", "2024-01-23"), symbol="NIFTY50"))
    events = await asyncio.wait_for(collect(bt, run.backtest_id), 60)
    assert kinds(events)[-1] == "backtest_failed"
    assert (f"NIFTY:2024-01-25:OPT:{int(atm)}:CE has no bar at 2024-01-23T09:20:00+05:30"
            in events[-1].backtest_failed.error_message)
    # A whole chain (CSV this time) replaces it: the run completes, its premiums from the chain.
    whole = write_sample_chain(tmp_path / "NIFTY50.csv", bars, [date(2024, 1, 25)], strikes)
    await ds.UploadOptionChain(chain_messages("NIFTY50", tmp_path / "NIFTY50.csv", size=50_000))
    run = await bt.StartBacktest(option_request(days=("2024-01-22", "2024-01-23"), symbol="NIFTY50"))
    events = await asyncio.wait_for(collect(bt, run.backtest_id), 60)
    assert kinds(events)[-1] == "backtest_completed"
    trades = [e.trade_update.trade for e in events if e.HasField("trade_update")]
    assert len(trades) == 4 and all(t.symbol.startswith("NIFTY:2024-01-25:OPT:") for t in trades)
    assert len(whole)


async def test_option_chain_uploads_are_for_your_own_datasets_and_checked(ds, tmp_path, settings):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,strike,open\n2024-01-22 09:15:00,21000,1\n")
    err = await failure(ds.UploadOptionChain(chain_messages("SIM-NIFTY", bad)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    err = await failure(ds.UploadOptionChain(chain_messages("NOPE", bad)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    await upload(ds, "MINE", file_bytes(session_rows(DAYS[:1], 30)))
    err = await failure(ds.UploadOptionChain(chain_messages("MINE", bad)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "missing columns expiry, option_type" in err.details()
    folder = settings.data_dir / "users" / "local" / "datasets"
    assert sorted(p.name for p in folder.iterdir()) == ["MINE"]
    assert not any(p.name.startswith(("MINE.options", "options-")) for p in (folder / "MINE").iterdir())
    assert os.path.exists(folder / "MINE" / "meta.json")
