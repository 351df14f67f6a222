"""Server streams over real sockets: SSE framing, resume, 204, errors, NDJSON, disconnects, ZIPs."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import time
import zipfile

import grpc
import httpx
import pytest

from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

from services.gateway.transcoding import to_dict

from .conftest import (
    N_EVENTS,
    N_MANY,
    FakeBacktestService,
    StartGateway,
    day_zip,
    events_of,
    make_events,
    parse_sse,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

STREAM = "/api/v1/backtests/{}/stream"
KINDS = [e.WhichOneof("event") for e in make_events("bt-1")]


async def test_sse_framing(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get(STREAM.format("bt-1"), headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert r.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in r.headers  # never gzip for event streams
    assert r.headers["x-request-id"]
    assert r.text.startswith("retry: 2000\n\n")
    blocks = parse_sse(r.text)
    assert blocks[0] == {"retry": "2000"}
    assert sum(1 for b in blocks if "retry" in b) == 1
    events = events_of(blocks)
    assert [int(e["id"]) for e in events] == list(range(1, N_EVENTS + 1))
    assert [e["event"] for e in events] == KINDS
    assert KINDS[0] == "backtest_started" and KINDS[-1] == "backtest_completed"
    for e in events:
        data = json.loads(e["data"])
        assert data["event_id"] == e["id"] and data["backtest_id"] == "bt-1"
        assert e["event"] in data
    trade = json.loads(events[2]["data"])["trade_update"]["trade"]
    assert trade["entry_flow_ids"] == ["ex-0-1"]  # snake_case, as the seeds


async def test_many_events_arrive_complete_and_in_order(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get(STREAM.format("bt-many"))
    events = events_of(parse_sse(r.text))
    assert [int(e["id"]) for e in events] == list(range(1, N_MANY + 1))
    # Read through the batched sibling (batches of 5 here), framed one SSE event per event.
    assert [c.method for c in fake.calls] == ["StreamBacktestBatches"]
    expected = [to_dict(ev) for ev in make_events("bt-many", days=999)]
    assert [json.loads(e["data"]) for e in events] == expected


async def test_the_batched_stream_has_a_route_of_its_own(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    # SSE: one SSE event per batch, its id the id of the batch's last event.
    r = await client.get(STREAM.format("bt-1") + ":batches?max_events=4")
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    blocks = events_of(parse_sse(r.text))
    batches = [json.loads(b["data"])["events"] for b in blocks]
    assert [len(b) for b in batches] == [4, 4, 3]
    assert [int(b["id"]) for b in blocks] == [4, 8, 11]
    assert all("event" not in b for b in blocks)  # a batch has no kind: EventSource's default "message"
    assert [int(e["event_id"]) for b in batches for e in b] == list(range(1, N_EVENTS + 1))
    assert fake.last("StreamBacktestBatches").request.max_events == 4
    # Resume from the last id seen, as EventSource does.
    r = await client.get(STREAM.format("bt-1") + ":batches?max_events=4", headers={"last-event-id": "8"})
    assert [int(b["id"]) for b in events_of(parse_sse(r.text))] == [11]
    assert fake.last("StreamBacktestBatches").request.after_event_id == 8
    # NDJSON: a batch per line.
    r = await client.get(STREAM.format("bt-1") + ":batches", headers={"accept": "application/x-ndjson"})
    lines = [json.loads(line)["result"]["events"] for line in r.text.splitlines()]
    assert [len(b) for b in lines] == [5, 5, 1]
    r = await client.get(STREAM.format("bt-1") + ":batches", headers={"last-event-id": str(N_EVENTS)})
    assert r.status_code == 204


class FakeWithoutBatches(FakeBacktestService):
    """An older engine: StreamBacktestBatches is UNIMPLEMENTED (the generated base method)."""

    StreamBacktestBatches = pb_grpc.BacktestServiceServicer.StreamBacktestBatches  # type: ignore[assignment]


async def test_an_engine_without_batches_is_streamed_message_by_message(start_gateway: StartGateway) -> None:
    server = grpc.aio.server()
    old = FakeWithoutBatches()
    pb_grpc.add_BacktestServiceServicer_to_server(old, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        base = await start_gateway(f"127.0.0.1:{port}")
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            for accept in ("text/event-stream", "application/x-ndjson"):
                r = await c.get(STREAM.format("bt-1"), headers={"accept": accept})
                assert r.status_code == 200
                if accept == "text/event-stream":
                    ids = [int(e["id"]) for e in events_of(parse_sse(r.text))]
                else:
                    ids = [int(json.loads(line)["result"]["event_id"]) for line in r.text.splitlines()]
                assert ids == list(range(1, N_EVENTS + 1))
            r = await c.get(STREAM.format("bt-nope"))
            assert r.status_code == 404  # errors still keep their status after the fallback
        # The gateway remembered: one UNIMPLEMENTED answer, then straight to the plain stream.
        assert [c.method for c in old.calls] == ["StreamBacktest"] * 3
    finally:
        await server.stop(0)


@pytest.mark.parametrize(("headers", "query", "first"), [
    ({"last-event-id": "5"}, "", 6),
    ({}, "?after_event_id=5", 6),
    ({}, "?afterEventId=9", 10),
    ({"last-event-id": "7"}, "?after_event_id=2", 8),  # the reconnect's header is newer than the URL
    ({"last-event-id": "0"}, "", 1),
])
async def test_resume(client: httpx.AsyncClient, fake: FakeBacktestService, headers: dict[str, str], query: str,
                      first: int) -> None:
    r = await client.get(STREAM.format("bt-1") + query, headers=headers)
    assert r.status_code == 200
    ids = [int(e["id"]) for e in events_of(parse_sse(r.text))]
    assert ids == list(range(first, N_EVENTS + 1))
    assert fake.last("StreamBacktestBatches").request.after_event_id == first - 1


@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson"])
async def test_resume_at_the_terminal_event_is_204(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                   accept: str) -> None:
    r = await client.get(STREAM.format("bt-1"), headers={"last-event-id": str(N_EVENTS), "accept": accept})
    assert r.status_code == 204 and r.content == b""


@pytest.mark.parametrize(("bid", "headers", "status", "code"), [
    ("nope", {}, 404, grpc.StatusCode.NOT_FOUND),
    ("bt-1", {"last-event-id": str(N_EVENTS + 1)}, 400, grpc.StatusCode.OUT_OF_RANGE),
    ("bt-1", {"last-event-id": "later"}, 400, grpc.StatusCode.INVALID_ARGUMENT),
])
async def test_errors_before_the_first_event_keep_their_status(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                               bid: str, headers: dict[str, str], status: int,
                                                               code: grpc.StatusCode) -> None:
    r = await client.get(STREAM.format(bid), headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == code.value[0]


async def test_an_error_after_the_first_event_is_a_stream_error_event(client: httpx.AsyncClient,
                                                                      fake: FakeBacktestService) -> None:
    r = await client.get(STREAM.format("bt-fail"))
    assert r.status_code == 200
    events = events_of(parse_sse(r.text))
    assert [e.get("id") for e in events] == ["1", "2", "3", None]
    assert events[-1]["event"] == "stream_error"
    assert json.loads(events[-1]["data"]) == {"code": grpc.StatusCode.INTERNAL.value[0],
                                              "message": "engine exploded on 2024-01-03", "details": []}


async def test_ndjson(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get(STREAM.format("bt-1"), headers={"accept": "application/x-ndjson", "last-event-id": "3",
                                                         "accept-encoding": "gzip"})
    assert r.headers["content-type"] == "application/x-ndjson"
    assert "content-encoding" not in r.headers
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [int(x["result"]["event_id"]) for x in lines] == list(range(4, N_EVENTS + 1))
    failed = await client.get(STREAM.format("bt-fail"), headers={"accept": "application/x-ndjson"})
    lines = [json.loads(line) for line in failed.text.splitlines()]
    assert [list(x) for x in lines] == [["result"]] * 3 + [["error"]]
    assert lines[-1]["error"]["message"] == "engine exploded on 2024-01-03"


async def test_heartbeats_keep_an_idle_stream_alive(start_gateway: StartGateway, fake: FakeBacktestService) -> None:
    url = await start_gateway(heartbeat_s=0.05)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.get(STREAM.format("bt-drip"))
    blocks = parse_sse(r.text)
    assert sum(1 for b in blocks if b == {"": "keepalive"}) >= 4  # ~1.25 s of 0.25 s gaps at 0.05 s
    assert [int(e["id"]) for e in events_of(blocks)] == list(range(1, 6))


async def test_a_silent_stream_sends_headers_after_the_open_wait(start_gateway: StartGateway,
                                                                 fake: FakeBacktestService) -> None:
    url = await start_gateway(stream_open_wait_s=0.05, heartbeat_s=0.1)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        started = time.perf_counter()
        async with c.stream("GET", STREAM.format("bt-quiet")) as r:
            assert r.status_code == 200
            assert time.perf_counter() - started < 0.4  # the first event comes after 0.5 s
            text = (await r.aread()).decode()
    blocks = parse_sse(text)
    assert blocks[0] == {"retry": "2000"}
    assert {"": "keepalive"} in blocks[:4]
    assert [int(e["id"]) for e in events_of(blocks)] == list(range(1, N_EVENTS + 1))


async def test_client_disconnect_cancels_the_grpc_call(gateway: str, fake: FakeBacktestService) -> None:
    event = fake.cancel_event("bt-slow")
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as c:
        async with c.stream("GET", STREAM.format("bt-slow")) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass
    closed = time.perf_counter()
    await asyncio.wait_for(event.wait(), 2)
    assert time.perf_counter() - closed < 1.0


async def test_disconnect_before_the_first_event_cancels_too(gateway: str, fake: FakeBacktestService) -> None:
    event = fake.cancel_event("bt-silent")
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as c:
        request = asyncio.create_task(c.get(STREAM.format("bt-silent")))
        await asyncio.sleep(0.2)  # the call is open; no headers yet (the open wait is 5 s)
        assert fake.last("StreamBacktestBatches").request.backtest_id == "bt-silent"
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
    closed = time.perf_counter()
    await asyncio.wait_for(event.wait(), 2)
    assert time.perf_counter() - closed < 1.0


async def test_ndjson_disconnect_cancels_too(gateway: str, fake: FakeBacktestService) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as c:
        async with c.stream("GET", STREAM.format("bt-slow"), headers={"accept": "application/x-ndjson"}) as r:
            assert json.loads(await anext(r.aiter_lines()))["result"]["event_id"] == "1"
    await asyncio.wait_for(fake.cancel_event("bt-slow").wait(), 2)


@pytest.mark.parametrize(("url", "filename", "date"), [
    ("/api/v1/backtests/bt-1/days/2024-01-02/archive.zip", "backtest_2024-01-02.zip", "2024-01-02"),
    ("/api/v1/backtests/bt-1/archive.zip", "backtest_bt-1.zip", "all"),
])
async def test_zip_downloads_pass_through(client: httpx.AsyncClient, fake: FakeBacktestService, url: str,
                                          filename: str, date: str) -> None:
    r = await client.get(url, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert "content-encoding" not in r.headers  # never gzip for zips
    expected = day_zip("bt-1", date)
    assert len(expected) > 3 * 16 * 1024  # it came in several HttpBody messages
    assert r.content == expected
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        docs = {n: json.loads(gzip.decompress(zf.read(n))) for n in zf.namelist() if n.endswith(".json.gz")}
    trades = docs[f"{date}/trades_daily.json.gz"]
    assert trades["summary"]["total_trades"] == len(trades["trades"])
    assert "events_history" in docs[f"{date}/diagnostics_export.json.gz"]


async def test_download_errors_before_the_first_chunk_keep_their_status(client: httpx.AsyncClient,
                                                                        fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/nope/archive.zip")
    assert r.status_code == 404 and r.json()["message"] == "backtest 'nope' not found"


async def test_a_download_failing_midway_is_truncated_not_completed(client: httpx.AsyncClient,
                                                                    fake: FakeBacktestService) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/api/v1/backtests/bt-broken/archive.zip")
