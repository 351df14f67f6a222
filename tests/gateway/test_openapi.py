"""The OpenAPI document says exactly what the gateway writes and reads (proto3 JSON).

Fast checks without a server: responses as the gateway renders them validate against the
response schemas; for a table of request bodies and query values, the request schemas accept
exactly what the gateway's transcoding accepts. tests/gateway/test_schemathesis.py checks the
same against the real stack with Schemathesis.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format, timestamp_pb2
from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import results_pb2

from services.gateway.bindings import Binding, compile_bindings
from services.gateway.errors import GatewayError
from services.gateway.openapi import INPUT_SUFFIX, build_openapi
from services.gateway.transcoding import build_request, check_body, to_dict

from .conftest import echo_class, services

ECHO_BODY = ("/test/v1/things/{id}:echo", "post")  # body "*": every field but the path's id


@functools.cache
def bindings() -> tuple[Binding, ...]:
    return tuple(compile_bindings(services()))


@functools.cache
def doc() -> dict[str, Any]:
    return build_openapi(bindings())


def binding(rpc: str, template: str) -> Binding:
    return next(b for b in bindings() if b.method.name == rpc and b.template.template == template)


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of `schema`, its `#/components/...` references resolved in the document."""
    root = {**schema, "components": doc()["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def component(name: str) -> jsonschema.Draft202012Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def gateway_accepts(message_class: Any, body: dict[str, Any]) -> bool:
    message = message_class()
    try:
        check_body(message.DESCRIPTOR, body)
        json_format.ParseDict(body, message)
    except (GatewayError, json_format.ParseError):
        return False
    return True


# ---- responses ---------------------------------------------------------------------------------

def test_doubles_may_be_nan_or_infinite_strings() -> None:
    metrics = results_pb2.Metrics(sharpe=math.nan, profit_factor=math.inf, calmar=-math.inf, win_rate_pct=55.5)
    written = to_dict(metrics)
    assert (written["sharpe"], written["profit_factor"], written["calmar"]) == ("NaN", "Infinity", "-Infinity")
    component("hindsight.v1.Metrics").validate(written)
    event = results_pb2.NodeEvent(variables={"rsi": math.nan, "close": 101.5})
    component("hindsight.v1.NodeEvent").validate(to_dict(event))
    assert not component("hindsight.v1.Metrics").is_valid({**written, "sharpe": "nan"})


def test_responses_write_64_bit_integers_as_strings_and_every_field_without_presence() -> None:
    backtest = pb.Backtest(backtest_id="bt-1", last_event_id=2**64 - 1,
                           created_at=timestamp_pb2.Timestamp(seconds=1704067200))
    written = to_dict(backtest)
    assert written["last_event_id"] == "18446744073709551615" and written["created_at"] == "2024-01-01T00:00:00Z"
    schema = component("hindsight.v1.Backtest")
    schema.validate(written)
    assert not schema.is_valid({**written, "last_event_id": 5})  # a number: not what the gateway writes
    assert not schema.is_valid({k: v for k, v in written.items() if k != "error_message"})  # always written
    assert "progress" not in written  # a message field is written only when set
    assert written["status"] == "BACKTEST_STATUS_UNSPECIFIED"  # by name (the schema also takes the number)
    assert not schema.is_valid({**written, "unknown": 1})


def test_at_most_one_member_of_a_oneof_is_written() -> None:
    event = pb.BacktestEvent(event_id=1, day_started=pb.DayStarted(date="2024-01-02"))
    written = to_dict(event)
    schema = component("hindsight.v1.BacktestEvent")
    schema.validate(written)
    assert not schema.is_valid({**written, "day_completed": to_dict(pb.DayCompleted())})


def test_the_error_body_is_a_status() -> None:
    schema = component("google.rpc.Status")
    schema.validate({"code": 3, "message": "x", "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"}]})
    assert not schema.is_valid({"code": 3, "message": "x"})


# ---- request bodies: the schema accepts exactly what the gateway accepts ---------------------------

# (JSON body of an EchoRequest, whether it is proto3 JSON the gateway takes)
ECHO_BODIES: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"note": None, "inner": None, "numbers": None, "labels": None}, True),  # null: the field's default
    ({"note": 5}, False),
    ({"numbers": [1, "2", -3, 2**31 - 1, -2**31]}, True),
    ({"numbers": [2**31]}, False),
    ({"numbers": ["2147483648"]}, False),
    ({"numbers": [None]}, False),  # null is no element of a repeated field
    ({"numbers": [1.0]}, True),
    ({"numbers": [1.5]}, False),
    ({"numbers": [True]}, False),
    ({"numbers": ["+5"]}, False),
    ({"numbers": ["05"]}, False),
    ({"numbers": [" 5"]}, False),
    ({"numbers": ["1e2"]}, False),
    ({"numbers": ["1_0"]}, False),
    ({"numbers": ["٣"]}, False),
    ({"big": "9223372036854775807"}, True),
    ({"big": 9223372036854775807}, True),
    ({"big": "-9223372036854775808"}, True),
    ({"big": "9223372036854775808"}, False),
    ({"big": "-0"}, True),
    ({"small": 4294967295}, True),
    ({"small": -1}, False),
    ({"small": "4294967296"}, False),
    ({"ratio": 0.5}, True),
    ({"ratio": "NaN"}, True),
    ({"ratio": "-Infinity"}, True),
    ({"ratio": "1.5e-3"}, True),
    ({"ratio": "nan"}, False),
    ({"ratio": "inf"}, False),
    ({"ratio": "1_000"}, False),
    ({"ratio": " 1"}, False),
    ({"ratio": True}, False),
    ({"color": "COLOR_RED"}, True),
    ({"color": 2}, True),
    ({"color": 7}, False),
    ({"color": 2**32 + 1}, False),  # upb reads an enum's number modulo 2**32
    ({"color": "2"}, False),
    ({"color": 1.5}, False),
    ({"color": True}, False),
    ({"color": "COLOR_GREEN"}, False),
    ({"colors": ["COLOR_BLUE", 1]}, True),
    ({"flag": True}, True),
    ({"flag": "true"}, False),
    ({"flag": 1}, False),
    ({"blob": "aGk="}, True),
    ({"blob": "aGk"}, True),
    ({"blob": "a-_b"}, True),
    ({"blob": "!!!"}, False),
    ({"blob": "a"}, False),
    ({"maybe": 7}, True),
    ({"maybe": "7"}, True),
    ({"maybe": "seven"}, False),
    ({"maybe": None}, True),
    ({"at": "2024-01-02T03:04:05Z"}, True),
    ({"at": "2024-01-02T03:04:05+05:30"}, True),
    ({"labels": {"k": "v"}}, True),
    ({"labels": {"k": None}}, False),
    ({"labels": {"k": 1}}, False),
    ({"inner": {"name": "a", "child": {"level": 2}}}, True),
    ({"inner": []}, False),
    ({"inner": "x"}, False),
    ({"left": "a"}, True),
    ({"left": "a", "right": None}, True),  # a null member does not count
    ({"left": "a", "right": "b"}, False),
    ({"nope": 1}, False),
]


@pytest.mark.parametrize(("body", "accepted"), ECHO_BODIES, ids=[repr(b)[:60] for b, _ in ECHO_BODIES])
def test_request_schemas_accept_exactly_what_the_gateway_accepts(body: dict[str, Any], accepted: bool) -> None:
    assert gateway_accepts(echo_class("EchoRequest"), body) is accepted
    path, method = ECHO_BODY
    schema = doc()["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    assert validator(schema).is_valid(body) is accepted


START_BODIES: list[tuple[dict[str, Any], bool]] = [
    ({"strategy": {}, "symbol": "SIM-NIFTY"}, True),
    ({"strategy": {}, "symbol": "SIM-NIFTY", "initial_capital": "NaN", "tick_interval": "3"}, True),
    ({"strategy": {"entries": [{"when": {"all": [{"not": {"lhs": {"value": "Infinity"}}}]}}]}, "symbol": "S"}, True),
    ({"strategy": {"entries": [{"quantity": {"units": 1, "lots": 2}}]}, "symbol": "S"}, False),
    ({"strategy": {"entries": [{"max_re_entries": None}]}, "symbol": "S"}, True),
    ({"strategy": {"entries": [{"when": {"lhs": {"value": True}}}]}, "symbol": "S"}, False),
    ({"strategy": {}, "symbol": "S", "initial_capital": 10**400}, False),  # was a 500 (OverflowError)
]


@pytest.mark.parametrize(("body", "accepted"), START_BODIES, ids=[repr(b)[:60] for b, _ in START_BODIES])
def test_the_start_request_schema_is_the_gateways_too(body: dict[str, Any], accepted: bool) -> None:
    assert gateway_accepts(pb.StartBacktestRequest, body) is accepted
    assert component("hindsight.v1.StartBacktestRequest").is_valid(body) is accepted


def test_required_fields_are_required_and_not_null() -> None:
    schema = component("hindsight.v1.StartBacktestRequest")
    assert not schema.is_valid({"strategy_id": "saved"})
    assert not schema.is_valid({"strategy_id": "saved", "symbol": None})
    assert schema.is_valid({"strategy_id": "saved", "symbol": "SIM-NIFTY"})  # a saved strategy, by reference
    start = doc()["paths"]["/api/v1/backtests"]["post"]["requestBody"]
    assert start["required"] is True
    cancel = doc()["paths"]["/api/v1/backtests/{backtest_id}:cancel"]["post"]["requestBody"]
    assert cancel["required"] is False  # an empty body is an empty message


# ---- query parameters and headers ----------------------------------------------------------------

# (parameter, its text, the value the schema sees: an integer's text is an integer, whether the
# gateway takes it)
QUERY: list[tuple[str, str, Any, bool]] = [
    ("page_size", "10", 10, True),
    ("page_size", "-1", -1, True),  # (refused by the engine's rule, not by its type)
    ("page_size", "+5", "+5", False),
    ("page_size", "007", "007", False),
    ("page_size", " 5", " 5", False),
    ("page_size", "5.0", "5.0", False),
    ("page_size", "2147483648", 2147483648, False),
    ("status", "BACKTEST_STATUS_RUNNING", "BACKTEST_STATUS_RUNNING", True),
    ("status", "3", 3, True),
    ("status", "42", 42, False),
    ("status", "4294967297", 4294967297, False),  # 2**32 + 1 would have been value 1
    ("status", "²", "²", False),  # str.isdigit() said yes and int() raised: a 500
    ("all_users", "true", True, True),
    ("all_users", "T", "T", True),
    ("all_users", "0", "0", True),
    ("all_users", "yes", "yes", False),
]


@pytest.mark.parametrize(("name", "text", "value", "accepted"), QUERY, ids=[f"{n}={t}" for n, t, _, _ in QUERY])
def test_query_parameters_are_what_their_schemas_say(name: str, text: str, value: Any, accepted: bool) -> None:
    listing = binding("ListBacktests", "/api/v1/backtests")
    try:
        build_request(listing, {}, [(name, text)])
        taken = True
    except GatewayError as exc:
        assert exc.http_status == 400
        taken = False
    assert taken is accepted
    op = doc()["paths"]["/api/v1/backtests"]["get"]
    schema = next(p["schema"] for p in op["parameters"] if p.get("name") == name)
    if schema.get("format") == "int32":  # a registered format: its range is the schema's
        schema = {**schema, "minimum": -2**31, "maximum": 2**31 - 1}
    assert validator(schema).is_valid(value) is accepted


def test_a_repeated_query_value_out_of_range_is_a_400() -> None:
    echo = binding("Echo", "/test/v1/things/{id}")
    with pytest.raises(GatewayError) as caught:
        build_request(echo, {"id": "t"}, [("numbers", "99999999999")])
    assert caught.value.http_status == 400  # was a 500 (the list's append raised)
    with pytest.raises(GatewayError):
        build_request(echo, {"id": "t"}, [("maybe", "99999999999")])  # an Int32Value


def test_last_event_id_is_described_as_the_text_it_is() -> None:
    stream = doc()["paths"]["/api/v1/backtests/{backtest_id}/stream"]["get"]
    header = next(p for p in stream["parameters"] if p.get("name") == "Last-Event-ID")
    check = validator(header["schema"])
    assert check.is_valid("18446744073709551615") and not check.is_valid("18446744073709551616")
    assert not check.is_valid("-1") and not check.is_valid("1.0")


# ---- the document ------------------------------------------------------------------------------

def test_every_operation_documents_the_errors_it_can_answer() -> None:
    for path, item in doc()["paths"].items():
        for op in item.values():
            if not op["operationId"].startswith("BacktestService_"):
                continue
            codes = set(op["responses"])
            assert {"400", "401", "403", "404", "409", "429", "500", "501", "503", "504", "default"} <= codes, path
            assert ("413" in codes) == ("requestBody" in op), path
            assert "412" not in codes  # FAILED_PRECONDITION is 400 in the gateway's table
            for code, response in op["responses"].items():
                if code != "default":
                    assert "X-Request-Id" in response["headers"], (path, code)
            assert "Retry-After" in op["responses"]["503"]["headers"]


def test_links_lead_from_a_new_backtest_to_its_operations() -> None:
    paths = doc()["paths"]
    links = paths["/api/v1/backtests"]["post"]["responses"]["200"]["links"]
    assert {"BacktestService_GetBacktest", "BacktestService_StreamBacktest", "BacktestService_CancelBacktest",
            "BacktestService_DeleteBacktest", "BacktestService_DownloadBacktest"} <= set(links)
    assert links["BacktestService_GetBacktest"]["parameters"] == {"backtest_id": "$response.body#/backtest_id"}
    day = paths["/api/v1/backtests/{backtest_id}"]["get"]["responses"]["200"]["links"]["BacktestService_GetDay"]
    assert day["parameters"] == {"backtest_id": "$response.body#/backtest_id",
                                 "date": "$response.body#/daily_summaries/0/date"}


def test_event_streams_and_downloads() -> None:
    paths = doc()["paths"]
    stream = paths["/api/v1/backtests/{backtest_id}/stream"]["get"]["responses"]["200"]["content"]
    event = validator(stream["text/event-stream"]["schema"])
    assert event.is_valid({"id": "3", "event": "day_started", "data": "{}"})
    assert event.is_valid({"event": "stream_error", "data": '{"code": 4}'})
    assert not event.is_valid({"id": "3", "event": "error", "data": "{}"})
    download = paths["/api/v1/backtests/{backtest_id}/archive.zip"]["get"]["responses"]["200"]
    assert download["content"] == {"application/zip": {"schema": {"type": "string", "format": "binary",
                                                                  "contentMediaType": "application/zip"}}}
    assert download["headers"]["Content-Disposition"]["required"] is True


def test_messages_used_both_ways_have_two_schemas() -> None:
    schemas = doc()["components"]["schemas"]
    assert "hindsight.v1.Strategy" in schemas and "hindsight.v1.Strategy" + INPUT_SUFFIX in schemas
    assert "hindsight.v1.StartBacktestRequest" + INPUT_SUFFIX not in schemas  # only ever a request
    variables = schemas["hindsight.v1.NodeEvent"]["properties"]["variables"]
    specials = {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}
    assert variables["additionalProperties"] == {"anyOf": [{"type": "number", "format": "double"}, specials]}


def test_the_document_is_valid_openapi() -> None:
    validate = pytest.importorskip("openapi_spec_validator").validate
    validate(doc())
