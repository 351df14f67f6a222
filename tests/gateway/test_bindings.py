"""Path templates, binding compilation, the status table and settings: no servers needed."""

from __future__ import annotations

import re

import grpc
import pytest

from services.gateway.bindings import BindingError, PathTemplate, ResponseKind, compile_bindings, known_verbs
from services.gateway.errors import HTTP_STATUS_FROM_CODE, http_status
from services.gateway.settings import GatewaySettings, split_host_port

from services.gateway.app import default_services

from .conftest import batch_test_service, echo_service, services, stream_test_service


@pytest.mark.parametrize(("template", "openapi", "variables", "verb"), [
    ("/api/v1/backtests", "/api/v1/backtests", [], None),
    ("/api/v1/backtests/{backtest_id}", "/api/v1/backtests/{backtest_id}", ["backtest_id"], None),
    ("/api/v1/backtests/{backtest_id}:cancel", "/api/v1/backtests/{backtest_id}:cancel", ["backtest_id"], "cancel"),
    ("/api/v1/strategies:validate", "/api/v1/strategies:validate", [], "validate"),
    ("/api/v1/backtests/{backtest_id}/days/{date}/archive.zip",
     "/api/v1/backtests/{backtest_id}/days/{date}/archive.zip", ["backtest_id", "date"], None),
    ("/v1/{name=projects/*/things/*}", "/v1/{name}", ["name"], None),
    ("/v1/{name=projects/*}/items:batchGet", "/v1/{name}/items:batchGet", ["name"], "batchGet"),
    ("/files/{path=**}", "/files/{path}", ["path"], None),
    ("/n/{inner.name}", "/n/{inner.name}", ["inner.name"], None),
    ("/a/*/b", "/a/*/b", [], None),
])
def test_templates_parse(template: str, openapi: str, variables: list[str], verb: str | None) -> None:
    parsed = PathTemplate.parse(template)
    assert parsed.openapi_path() == openapi
    assert [v.name for v in parsed.variables] == variables
    assert parsed.verb == verb


@pytest.mark.parametrize("template", [
    "api/v1/x",  # no leading slash
    "/api/{id",  # unbalanced
    "/api//x",  # empty segment
    "/a/**/b",  # '**' not last
    "/a/{x}/{x}",  # bound twice
    "/a/{1x}",  # not an identifier
    "/a/{x={y}}",  # nested variable
])
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(BindingError):
        PathTemplate.parse(template)


@pytest.mark.parametrize(("template", "path", "verb", "expected"), [
    ("/b/{id}", ["b", "bt-1"], None, {"id": "bt-1"}),
    ("/b/{id}", ["b", "bt%2F1"], None, {"id": "bt/1"}),  # one segment, fully decoded
    ("/b/{id}", ["b", ""], None, None),  # empty segment never matches a variable
    ("/b/{id}", ["b", "x", "y"], None, None),
    ("/b/{id}", ["b", "x"], "cancel", None),  # verbs must match
    ("/b/{id}:cancel", ["b", "x"], "cancel", {"id": "x"}),
    ("/f/{path=docs/**}", ["f", "docs", "a", "b%2Fc"], None, {"path": "docs/a/b%2Fc"}),  # keeps %2F
    ("/f/{path=docs/**}", ["f", "docs"], None, {"path": "docs"}),
    ("/f/{path=docs/**}", ["f", "other", "a"], None, None),
    ("/v/{name=p/*/t/*}", ["v", "p", "1", "t", "2"], None, {"name": "p/1/t/2"}),
    ("/v/{name=p/*/t/*}", ["v", "p", "1", "x", "2"], None, None),
    ("/a.zip/{x}", ["a%2Ezip", "y"], None, {"x": "y"}),  # an encoded literal still matches
])
def test_template_matching(template: str, path: list[str], verb: str | None,
                           expected: dict[str, str] | None) -> None:
    assert PathTemplate.parse(template).match(path, verb) == expected


def test_every_rule_of_the_api_becomes_a_binding() -> None:
    bindings = compile_bindings(services())
    by_rpc = {(b.method.name, b.http_method, b.template.template): b for b in bindings}
    expected = {
        ("StartBacktest", "POST", "/api/v1/backtests"): ResponseKind.UNARY,
        ("StreamBacktest", "GET", "/api/v1/backtests/{backtest_id}/stream"): ResponseKind.STREAM,
        ("StreamBacktestBatches", "GET", "/api/v1/backtests/{backtest_id}/stream:batches"): ResponseKind.STREAM,
        ("GetBacktest", "GET", "/api/v1/backtests/{backtest_id}"): ResponseKind.UNARY,
        ("ListBacktests", "GET", "/api/v1/backtests"): ResponseKind.UNARY,
        ("CancelBacktest", "POST", "/api/v1/backtests/{backtest_id}:cancel"): ResponseKind.UNARY,
        ("DeleteBacktest", "DELETE", "/api/v1/backtests/{backtest_id}"): ResponseKind.UNARY,
        ("GetDay", "GET", "/api/v1/backtests/{backtest_id}/days/{date}"): ResponseKind.UNARY,
        ("DownloadDay", "GET", "/api/v1/backtests/{backtest_id}/days/{date}/archive.zip"): ResponseKind.BYTES,
        ("DownloadBacktest", "GET", "/api/v1/backtests/{backtest_id}/archive.zip"): ResponseKind.BYTES,
        ("ValidateStrategy", "POST", "/api/v1/strategies:validate"): ResponseKind.UNARY,
        ("ListDatasets", "GET", "/api/v1/datasets"): ResponseKind.UNARY,
        ("GetCaller", "GET", "/api/v1/me"): ResponseKind.UNARY,
    }
    for key, kind in expected.items():
        assert by_rpc[key].kind is kind, key
    # The echo service: six rules on Echo (additional_bindings included), EchoTags, Count, Render, Upload,
    # Ingest.
    assert sum(1 for b in bindings if b.method.containing_service.name == "EchoService") == 11
    assert known_verbs(bindings) == {"cancel", "validate", "batches", "echo", "peek", "compare", "upload"}
    # Every RPC of the API has a rule (docs/architecture.md); the test list above names them all.
    api = default_services()[0]
    assert {m.name for m in api.methods} == {rpc for rpc, _, _ in expected}
    # ... and every RPC of every service gets a route, the client-streaming uploads included.
    for service in default_services():
        routed = {b.method.name for b in bindings if b.method.containing_service.full_name == service.full_name}
        assert routed == {m.name for m in service.methods}, service.full_name
    uploads = {b.method.name: b for b in bindings if b.request_stream}
    assert set(uploads) == {"UploadDataset", "UploadOptionChain", "Ingest"}
    assert uploads["UploadDataset"].template.template == "/api/v1/datasets/{symbol}:upload"
    assert uploads["UploadOptionChain"].template.template == "/api/v1/datasets/{symbol}/options:upload"
    for upload in uploads.values():
        assert upload.kind is ResponseKind.UNARY and upload.body in ("chunk", "file")
    assert not any(b.request_stream for b in bindings if not b.method.client_streaming)
    assert by_rpc[("StartBacktest", "POST", "/api/v1/backtests")].body == "*"
    assert by_rpc[("StartBacktest", "POST", "/api/v1/backtests")].grpc_path == \
        "/hindsight.v1.BacktestService/StartBacktest"


def test_a_stream_with_a_batched_sibling_is_read_through_it() -> None:
    stream = next(b for b in compile_bindings(services()) if b.method.name == "StreamBacktest")
    assert stream.batched is not None and stream.batched.field == "events"
    assert stream.batched.grpc_path == "/hindsight.v1.BacktestService/StreamBacktestBatches"
    assert stream.batched.batch_class.DESCRIPTOR.full_name == "hindsight.v1.BacktestEventBatch"
    # A request of the stream's type reads unchanged as the sibling's (checked at start-up).
    from hindsight.v1 import backtest_service_pb2 as pb

    plain = pb.StreamBacktestRequest(backtest_id="bt_1", after_event_id=41)
    assert pb.StreamBacktestBatchesRequest.FromString(plain.SerializeToString()) == \
        pb.StreamBacktestBatchesRequest(backtest_id="bt_1", after_event_id=41)
    assert all(b.batched is None for b in compile_bindings(services()) if b.method.name != "StreamBacktest")
    (good,) = compile_bindings([batch_test_service("Good")])
    assert good.batched is not None and good.batched.field == "items"


@pytest.mark.parametrize(("service", "needle"), [
    ("Missing", "'Nope' is not another method"),
    ("Itself", "'List' is not another method"),
    ("Unary", "must be server-streaming"),
    ("FieldMissing", "lacks field 3 (tags)"),
    ("FieldType", "lacks field 2 (after)"),
    ("ExtraField", "exactly one field"),
    ("WrongItem", "repeated hindsight.batchtest.Item"),
    ("NotRepeated", "repeated hindsight.batchtest.Item"),
])
def test_bad_batched_siblings_are_refused_at_start_up(service: str, needle: str) -> None:
    with pytest.raises(BindingError, match=re.escape(needle)):
        compile_bindings([batch_test_service(service)])


def test_a_client_stream_with_an_http_body_body_is_served_as_a_streamed_request_body() -> None:
    bindings = compile_bindings([stream_test_service("Good")])
    assert [(b.http_method, b.template.template) for b in bindings] == [
        ("POST", "/streamtest/{id}"), ("PUT", "/streamtest/{id}/file")]
    for binding in bindings:
        assert binding.request_stream and binding.body == "file"
        assert binding.kind is ResponseKind.BYTES  # a google.api.HttpBody answer is raw bytes


@pytest.mark.parametrize(("service", "needle"), [
    ("BodyStar", 'it has body: "*"'),
    ("NoBody", "it has no body"),
    ("NotHttpBody", 'it has body: "label"'),
    ("Repeated", 'it has body: "files"'),
    ("AdditionalBad", 'it has body: "*"'),  # every rule of the method, additional ones included
    ("Bidi", "is a bidirectional stream"),
])
def test_client_streams_that_cannot_be_served_are_refused_at_start_up(service: str, needle: str) -> None:
    with pytest.raises(BindingError, match=re.escape(needle)) as refused:
        compile_bindings([stream_test_service(service)])
    if service != "Bidi":
        assert "must bind the body to a singular google.api.HttpBody field of hindsight.streamtest.Req" \
            in str(refused.value)
    assert f"hindsight.streamtest.{service}." in str(refused.value)


def test_literal_segments_sort_before_variables() -> None:
    specific = [b.template.specificity for b in compile_bindings([echo_service()])]
    assert specific == sorted(specific)


# grpc-gateway v2, runtime/errors.go HTTPStatusFromCode, copied here independently.
GRPC_GATEWAY_TABLE = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_status_table_is_grpc_gateways(code: grpc.StatusCode) -> None:
    assert HTTP_STATUS_FROM_CODE[code] == GRPC_GATEWAY_TABLE[code.name]
    assert http_status(code.value[0]) == GRPC_GATEWAY_TABLE[code.name]


def test_unknown_code_number_is_500() -> None:
    assert http_status(99) == 500


def test_settings_from_env() -> None:
    s = GatewaySettings.from_env({"HINDSIGHT_HTTP_ADDR": "0.0.0.0:9000", "HINDSIGHT_ENGINE_ADDR": "engine:1",
                                  "HINDSIGHT_CORS_ORIGINS": "http://a.test, http://b.test,",
                                  "HINDSIGHT_MAX_BODY_BYTES": "2048", "HINDSIGHT_DEFAULT_TIMEOUT_S": "2.5"})
    assert (s.http_addr, s.engine_addr) == ("0.0.0.0:9000", "engine:1")
    assert (s.max_body_bytes, s.default_timeout_s) == (2048, 2.5)
    assert s.cors_origins == ("http://a.test", "http://b.test")
    d = GatewaySettings.from_env({})
    assert (d.http_addr, d.engine_addr, d.cors_origins, d.max_body_bytes) == \
        ("127.0.0.1:8080", "127.0.0.1:50051", (), 1 << 20)


@pytest.mark.parametrize(("env", "needle"), [
    ({"HINDSIGHT_MAX_BODY_BYTES": "lots"}, "HINDSIGHT_MAX_BODY_BYTES"),
    ({"HINDSIGHT_HTTP_ADDR": "localhost"}, "HINDSIGHT_HTTP_ADDR"),
    ({"HINDSIGHT_DEFAULT_TIMEOUT_S": "-1"}, "default_timeout_s"),
    ({"HINDSIGHT_DOCS_DIR": "/nonexistent"}, "HINDSIGHT_DOCS_DIR"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        GatewaySettings.from_env(env)


@pytest.mark.parametrize(("addr", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)), (":9", ("0.0.0.0", 9)),
])
def test_split_host_port(addr: str, expected: tuple[str, int]) -> None:
    assert split_host_port(addr) == expected
