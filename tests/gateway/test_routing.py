"""Routing, transcoding, errors and headers, over real HTTP to a real gRPC server (table-driven)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import grpc
import httpx
import pytest

from .conftest import FakeBacktestService, StartGateway, as_json, parse_sse

pytestmark = pytest.mark.asyncio(loop_scope="session")

STRATEGY = {"name": "x", "entries": [{"id": "entry-1", "side": "buy",
                                      "when": {"lhs": {"indicator": "rsi"}, "op": "<", "rhs": {"value": 30}}}]}

# (HTTP method, URL, JSON body or None, the RPC, what the engine must receive)
ROUTES: list[tuple[str, str, Any, str, dict[str, Any]]] = [
    ("GET", "/api/v1/backtests/bt-1", None, "GetBacktest", {"backtest_id": "bt-1"}),
    ("GET", "/api/v1/backtests/bt-1?omit_days=true", None, "GetBacktest", {"backtest_id": "bt-1", "omit_days": True}),
    ("GET", "/api/v1/backtests/bt-1?omitDays=1", None, "GetBacktest", {"backtest_id": "bt-1", "omit_days": True}),
    ("GET", "/api/v1/backtests/bt%2F1", None, "GetBacktest", {"backtest_id": "bt/1"}),
    ("GET", "/api/v1/backtests/caf%C3%A9", None, "GetBacktest", {"backtest_id": "café"}),
    ("GET", "/api/v1/backtests/a:b", None, "GetBacktest", {"backtest_id": "a:b"}),  # not a known verb
    ("POST", "/api/v1/backtests/bt-1:cancel", None, "CancelBacktest", {"backtest_id": "bt-1"}),
    ("POST", "/api/v1/backtests/bt-1:cancel", {}, "CancelBacktest", {"backtest_id": "bt-1"}),
    # The path wins over the body for a field that both set.
    ("POST", "/api/v1/backtests/bt-1:cancel", {"backtest_id": "other"}, "CancelBacktest", {"backtest_id": "bt-1"}),
    ("DELETE", "/api/v1/backtests/bt-1", None, "DeleteBacktest", {"backtest_id": "bt-1"}),
    ("GET", "/api/v1/backtests/bt-1/days/2024-01-02", None, "GetDay", {"backtest_id": "bt-1", "date": "2024-01-02"}),
    ("GET", "/api/v1/backtests", None, "ListBacktests", {}),
    ("GET", "/api/v1/backtests?strategy_id=rsi&status=BACKTEST_STATUS_RUNNING&page_size=10&page_token=abc",
     None, "ListBacktests",
     {"strategy_id": "rsi", "status": "BACKTEST_STATUS_RUNNING", "page_size": 10, "page_token": "abc"}),
    ("GET", "/api/v1/backtests?status=3", None, "ListBacktests", {"status": "BACKTEST_STATUS_COMPLETED"}),
    ("GET", "/api/v1/backtests?pageSize=5&strategyId=a%20b", None, "ListBacktests",
     {"page_size": 5, "strategy_id": "a b"}),
    ("GET", "/api/v1/datasets", None, "ListDatasets", {}),
    ("POST", "/api/v1/strategies:validate", {"strategy": STRATEGY}, "ValidateStrategy", {"strategy": STRATEGY}),
    ("POST", "/api/v1/backtests",
     {"strategy": STRATEGY, "strategyId": "rsi", "symbol": "SIM-NIFTY", "startDate": "2024-01-01",
      "initial_capital": 5000, "tickInterval": 3},
     "StartBacktest",
     {"strategy": STRATEGY, "strategy_id": "rsi", "symbol": "SIM-NIFTY", "start_date": "2024-01-01",
      "initial_capital": 5000.0, "tick_interval": 3}),
    # The test-only echo service: rules the real API has no use for yet.
    ("GET", "/test/v1/things/t1?inner.name=a&inner.child.level=3&numbers=1&numbers=2&color=COLOR_RED"
            "&colors=COLOR_RED&colors=2&flag=true&ratio=0.5&big=9007199254740993&at=2024-01-02T03:04:05Z"
            "&displayName=Zoë&tags=a&tags=b&blob=aGk&maybe=7&left=L&small=4294967295",
     None, "Echo",
     {"id": "t1", "inner": {"name": "a", "child": {"level": 3}}, "numbers": [1, 2], "color": "COLOR_RED",
      "colors": ["COLOR_RED", "COLOR_BLUE"], "flag": True, "ratio": 0.5, "big": "9007199254740993",
      "at": "2024-01-02T03:04:05Z", "display_name": "Zoë", "tags": ["a", "b"], "blob": "aGk=", "maybe": 7,
      "left": "L", "small": 4294967295}),
    ("GET", "/test/v1/things/t1?inner.name=&note=", None, "Echo", {"id": "t1", "inner": {}}),
    ("POST", "/test/v1/things/t1:echo", {"inner": {"name": "b"}, "labels": {"k": "v"}, "right": "R", "big": 5},
     "Echo", {"id": "t1", "inner": {"name": "b"}, "labels": {"k": "v"}, "right": "R", "big": "5"}),
    ("PUT", "/test/v1/things/t1/note?flag=true&inner.level=2", "hello", "Echo",
     {"id": "t1", "note": "hello", "flag": True, "inner": {"level": 2}}),
    ("GET", "/test/v1/things/t1:peek", None, "Echo", {"id": "t1"}),
    ("GET", "/test/v1/files/docs/a/b%2Fc.txt", None, "Echo", {"path": "docs/a/b%2Fc.txt"}),
    ("GET", "/test/v1/nested/nm/4", None, "Echo", {"inner": {"name": "nm", "level": 4}}),
]


@pytest.mark.parametrize(("method", "url", "body", "rpc", "expected"), ROUTES,
                         ids=[f"{m} {u[:60]}" for m, u, *_ in ROUTES])
async def test_routes_transcode_to_the_right_request(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                     method: str, url: str, body: Any, rpc: str,
                                                     expected: dict[str, Any]) -> None:
    r = await client.request(method, url, json=body) if body is not None else await client.request(method, url)
    assert r.status_code == 200, r.text
    assert as_json(fake.last(rpc).request) == expected


async def test_responses_use_proto_field_names_and_print_zero_values(client: httpx.AsyncClient,
                                                                    fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/bt-1?omit_days=true")
    body = r.json()
    assert r.headers["content-type"] == "application/json"
    assert body["backtest_id"] == "bt-1" and "backtestId" not in body
    assert body["status"] == "BACKTEST_STATUS_COMPLETED"  # enums by name
    assert body["last_event_id"] == "11"  # 64-bit integers as strings (proto3 JSON)
    assert body["created_at"] == "2024-01-01T00:00:00Z"
    assert body["daily_summaries"] == [] and body["error_message"] == ""  # zero values are written
    detail = (await client.get("/api/v1/backtests/bt-1/days/2024-01-02")).json()
    assert detail["events_history"]["ex-1"]["variables"] == {"stop_loss": 99.5}
    echo = (await client.post("/test/v1/things/t1:echo", json={"displayName": "camel in"})).json()
    assert echo["display_name"] == "camel in"


async def test_unicode_survives(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/bad-unicode")
    assert r.json()["backtest_id"] == "ünïcødé ✓"


async def test_response_body_rule_returns_one_field(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/test/v1/tags/x?tags=a&tags=b")
    assert r.json() == ["a", "b"]
    assert (await client.get("/test/v1/tags/x")).json() == []


async def test_a_plain_message_stream_is_served_without_code(client: httpx.AsyncClient,
                                                             fake: FakeBacktestService) -> None:
    r = await client.get("/test/v1/count/3", headers={"accept": "application/x-ndjson"})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines == [{"result": {"name": f"n{i}", "level": i}} for i in range(3)]
    sse = parse_sse((await client.get("/test/v1/count/2")).text)
    # No event_id field and no oneof: no `id:` and no `event:` lines (EventSource says "message").
    assert sse == [{"retry": "2000"}, {"data": '{"name":"n0","level":0}'}, {"data": '{"name":"n1","level":1}'}]


# (method, URL, body bytes, content type, HTTP status, words the message must contain)
BAD_REQUESTS: list[tuple[str, str, bytes | None, str | None, int, list[str]]] = [
    ("GET", "/api/v1/backtests?foo=1", None, None, 400, ["unknown query parameter", "foo"]),
    ("GET", "/api/v1/backtests?status=NOPE", None, None, 400, ["NOPE", "BACKTEST_STATUS_RUNNING"]),
    ("GET", "/api/v1/backtests?status=42", None, None, 400, ["42"]),
    ("GET", "/api/v1/backtests?page_size=ten", None, None, 400, ["page_size", "integer"]),
    ("GET", "/api/v1/backtests?page_size=99999999999", None, None, 400, ["page_size"]),
    ("GET", "/api/v1/backtests?page_size=1&page_size=2", None, None, 400, ["more than once"]),
    ("GET", "/api/v1/backtests/bt-1?omit_days=maybe", None, None, 400, ["boolean"]),
    ("GET", "/api/v1/backtests/bt-1?backtest_id=z", None, None, 400, ["backtest_id", "path"]),
    ("GET", "/test/v1/things/t1?left=a&right=b", None, None, 400, ["oneof", "right"]),
    ("GET", "/test/v1/things/t1?labels=x", None, None, 400, ["labels"]),
    ("GET", "/test/v1/things/t1?inner=x", None, None, 400, ["inner", "message"]),
    ("GET", "/test/v1/things/t1?inner.nope=x", None, None, 400, ["nope"]),
    ("GET", "/test/v1/things/t1?flag.x=1", None, None, 400, ["flag"]),
    ("GET", "/test/v1/things/t1?at=yesterday", None, None, 400, ["at"]),
    ("GET", "/test/v1/things/t1?small=-1", None, None, 400, ["small"]),
    ("GET", "/test/v1/things/t1?blob=***", None, None, 400, ["base64"]),
    ("GET", "/test/v1/nested/nm/high", None, None, 400, ["inner.level", "integer"]),
    ("POST", "/api/v1/backtests?x=1", b"{}", "application/json", 400, ["x", "body"]),
    ("POST", "/api/v1/backtests", b'{"symbol": }', "application/json", 400,
     ["malformed JSON", "line 1, column 12 (char 11)"]),
    ("POST", "/api/v1/backtests", b'{\n  "symbol": "A",\n  "x": [1, 2\n}', "application/json", 400,
     ["malformed JSON", "line 4"]),
    ("POST", "/api/v1/backtests", b'{"nope": 1}', "application/json", 400, ["nope"]),
    ("POST", "/api/v1/backtests", b'{"strategy": {"entries": [{"sidee": "buy"}]}}', "application/json", 400,
     ["sidee"]),
    ("POST", "/api/v1/backtests", b'{"tick_interval": "many"}', "application/json", 400, ["tick_interval"]),
    ("POST", "/api/v1/backtests", b"[1, 2]", "application/json", 400, ["JSON object"]),
    ("POST", "/api/v1/backtests", b"\xff\xfe{}", "application/json", 400, ["UTF-8"]),
    ("POST", "/api/v1/backtests", b"symbol=x", "application/x-www-form-urlencoded", 415, ["application/json"]),
    ("POST", "/api/v1/backtests", b"{}", "text/plain", 415, ["text/plain"]),
    ("POST", "/api/v1/backtests", b"{" + b" " * (1 << 20) + b"}", "application/json", 413, ["limit"]),
    ("GET", "/api/v1/nothing-here", None, None, 404, ["no route", "/api/v1/nothing-here"]),
    ("GET", "/api/v1/backtests/", None, None, 404, ["no route"]),
    ("PUT", "/api/v1/datasets", None, None, 405, ["PUT", "GET"]),
    ("GET", "/api/v1/backtests/bt-1:cancel", None, None, 405, ["POST"]),
    ("PATCH", "/api/v1/backtests/bt-1", None, None, 405, ["DELETE, GET"]),
]


@pytest.mark.parametrize(("method", "url", "body", "ctype", "status", "words"), BAD_REQUESTS,
                         ids=[f"{m} {u[:50]} {s}" for m, u, _, _, s, _ in BAD_REQUESTS])
async def test_bad_requests_get_a_status_json_naming_the_problem(
        client: httpx.AsyncClient, fake: FakeBacktestService, method: str, url: str, body: bytes | None,
        ctype: str | None, status: int, words: list[str]) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = await client.request(method, url, content=body, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == {"code", "message", "details"}
    assert isinstance(err["code"], int) and err["code"] != 0
    for word in words:
        assert word in err["message"], (word, err["message"])
    assert "Traceback" not in r.text
    assert not fake.calls, "a bad request must not reach the engine"
    if status == 405:
        assert r.headers["allow"]


async def test_unknown_query_parameter_is_a_field_violation(client: httpx.AsyncClient) -> None:
    err = (await client.get("/api/v1/backtests?colour=red")).json()
    assert err["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert err["details"] == [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                               "field_violations": [{"field": "colour", "description": "unknown query parameter"}]}]


STATUS_TABLE = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500,
}


@pytest.mark.parametrize(("name", "status"), STATUS_TABLE.items())
async def test_engine_codes_map_to_http_statuses(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                 name: str, status: int) -> None:
    r = await client.get(f"/api/v1/backtests/code-{name}")
    assert r.status_code == status
    assert r.json() == {"code": grpc.StatusCode[name].value[0], "message": f"forced {name}", "details": []}
    assert ("retry-after" in r.headers) == (status == 503)


async def test_rich_error_details_pass_through(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/rich")
    assert r.status_code == 400
    assert r.json() == {"code": 3, "message": "invalid strategy", "details": [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"field": "strategy.entries[0].when",
                              "description": "unknown indicator 'rsi2' — did you mean 'rsi'?"}]}]}


async def test_retry_info_becomes_retry_after(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/retry")
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json()["details"][0] == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": "3s"}


async def test_unknown_detail_types_are_kept_undecoded(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/odd")
    assert r.status_code == 400
    assert r.json()["details"] == [{"@type": "type.googleapis.com/acme.Unknown", "value": "CAE="}]


async def test_engine_unreachable_is_503_with_retry_after(start_gateway: StartGateway, closed_port: int) -> None:
    url = await start_gateway(f"127.0.0.1:{closed_port}")
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        for path in ("/api/v1/backtests/bt-1", "/api/v1/backtests/bt-1/stream",
                     "/api/v1/backtests/bt-1/archive.zip"):
            r = await c.get(path)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["retry-after"] == "1"
            assert r.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


async def test_unexpected_failure_is_500_json_without_traceback(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import services.gateway.endpoints as endpoints

    def broken(*args: Any) -> bytes:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(endpoints, "response_json", broken)
    r = await client.get("/api/v1/datasets", headers={"x-request-id": "req-500"})
    assert r.status_code == 500
    assert r.json() == {"code": 13, "message": "internal error in the gateway (request id req-500)", "details": []}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] == "req-500"
    assert any("req-500" in rec.getMessage() and rec.exc_info for rec in caplog.records)  # logged, with traceback


async def test_authorization_and_request_id_are_forwarded(client: httpx.AsyncClient,
                                                          fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/datasets", headers={"authorization": "Bearer t0k3n", "x-request-id": "abc-123",
                                                      "grpc-metadata-tenant": "acme"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "abc-123"
    md = fake.last("ListDatasets").metadata
    assert md["authorization"] == "Bearer t0k3n"
    assert md["x-request-id"] == "abc-123"
    assert md["tenant"] == "acme"
    assert md["x-forwarded-for"] == "127.0.0.1"


async def test_a_request_id_is_made_when_absent(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r1 = await client.get("/api/v1/datasets")
    r2 = await client.get("/api/v1/nothing")  # errors carry one too
    for r in (r1, r2):
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert fake.last("ListDatasets").metadata["x-request-id"] == r1.headers["x-request-id"]
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]
    bad = await client.get("/api/v1/datasets", headers={"x-request-id": "has space"})
    assert bad.headers["x-request-id"] != "has space"


async def test_engine_initial_metadata_comes_back_as_headers(client: httpx.AsyncClient,
                                                             fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/meta?omit_days=1")
    assert r.headers["grpc-metadata-x-engine-node"] == "node-7"


@pytest.mark.parametrize("header", ["100m", "1S", "100000u"])
async def test_grpc_timeout_sets_the_deadline(client: httpx.AsyncClient, fake: FakeBacktestService,
                                              header: str) -> None:
    started = time.perf_counter()
    r = await client.get("/api/v1/backtests/slow", headers={"grpc-timeout": header})
    assert r.status_code == 504 and r.json()["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert time.perf_counter() - started < 1.8
    await asyncio.wait_for(fake.cancel_event("slow").wait(), 2)  # the engine saw the deadline too


async def test_bad_grpc_timeout_is_400(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/slow", headers={"grpc-timeout": "soon"})
    assert r.status_code == 400 and "Grpc-Timeout" in r.json()["message"]


async def test_unary_calls_get_the_default_deadline(start_gateway: StartGateway, fake: FakeBacktestService) -> None:
    url = await start_gateway(default_timeout_s=0.2)
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        started = time.perf_counter()
        r = await c.get("/api/v1/backtests/slow")
        assert r.status_code == 504
        assert time.perf_counter() - started < 1.5


async def test_json_is_gzipped_when_asked(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/api/v1/backtests/bt-1", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.json()["daily_summaries"]) == 400
    small = await client.get("/api/v1/datasets", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in small.headers  # too small to be worth it
    plain = await client.get("/api/v1/backtests/bt-1", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers


async def test_cors_only_when_configured(start_gateway: StartGateway, client: httpx.AsyncClient,
                                         fake: FakeBacktestService) -> None:
    origin = {"origin": "http://app.test"}
    assert "access-control-allow-origin" not in (await client.get("/api/v1/datasets", headers=origin)).headers
    url = await start_gateway(cors_origins=("http://app.test",))
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.get("/api/v1/datasets", headers=origin)
        assert r.headers["access-control-allow-origin"] == "http://app.test"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        pre = await c.options("/api/v1/backtests", headers={**origin, "access-control-request-method": "POST",
                                                            "access-control-request-headers": "content-type"})
        assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]
        other = await c.get("/api/v1/datasets", headers={"origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers


async def test_a_unary_http_body_is_returned_raw(client: httpx.AsyncClient, fake: FakeBacktestService) -> None:
    r = await client.get("/test/v1/render/x/note.txt?note=h%C3%A9llo")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.content == "héllo".encode()
    assert r.headers["content-disposition"] == 'attachment; filename="render_x.txt"'


@pytest.mark.parametrize(("content_type", "sent"), [
    ("image/png", "image/png"),
    (None, "application/octet-stream"),
])
async def test_a_raw_body_fills_an_http_body_field(client: httpx.AsyncClient, fake: FakeBacktestService,
                                                   content_type: str | None, sent: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/test/v1/uploads/u1?label=first", content=bytes(range(256)) * 4, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "u1", "content_type": sent, "size": 1024, "label": "first"}


@pytest.mark.parametrize("header", ["2063154H", "99999999H", "99999999M"])
async def test_a_huge_grpc_timeout_is_no_deadline_not_an_instant_504(client: httpx.AsyncClient, header: str) -> None:
    # gRPC's clock overflowed on deadlines past ~2,000,000 hours: the call failed at once.
    r = await client.get("/api/v1/backtests/bt-1", headers={"grpc-timeout": header})
    assert r.status_code == 200, r.text
