"""The pieces of the app's direct path for unary calls: `raw_response` and `error_parts` are what
a Starlette Response sends, and transcoding.dumps (orjson) is the standard library's JSON, byte
for byte."""

from __future__ import annotations

import json
import math
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from services.gateway import endpoints, transcoding
from services.gateway.errors import make_status


@pytest.mark.parametrize(("status", "headers", "body", "media_type"), [
    (200, None, b'{"a":1}', "application/json"),
    (200, {"Grpc-Metadata-X": "1", "retry-after": "3"}, b"{}", "application/json"),
    (200, {"content-disposition": 'attachment; filename="a.txt"'}, b"hi", "text/plain"),
    (200, None, b"hi", "text/plain; charset=latin-1"),
    (200, None, b"x", "text/csv; Charset=utf-8"),
    (200, {"content-type": "image/png", "content-length": "3"}, b"abc", "application/octet-stream"),
    (204, None, b"", None),
    (304, {"etag": "x"}, b"", "application/json"),
    (404, None, b"", "application/json"),
    (503, {"Retry-After": "1"}, b"{}", "application/json"),
])
def test_raw_response_is_what_a_starlette_response_sends(status: int, headers: dict[str, str] | None, body: bytes,
                                                         media_type: str | None) -> None:
    expected = Response(body, status_code=status, headers=headers, media_type=media_type)
    assert endpoints.raw_response(status, headers, body, media_type) == (status, expected.raw_headers, expected.body)


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE])
def test_error_parts_are_error_response(code: grpc.StatusCode) -> None:
    status = make_status(code, "nope ✓")
    for http, headers, retry in ((None, None, 1), (405, {"allow": "GET"}, 1), (None, None, 7)):
        expected = endpoints.error_response(status, http, headers, retry_after_s=retry)
        assert endpoints.error_parts(status, http, headers, retry_after_s=retry) == \
            (expected.status_code, expected.raw_headers, expected.body)


def _std(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("value", [
    {"a": 1.5, "b": [1, 2, {"c": "d"}], "e": True, "f": False, "g": "ünï ✓ \u2028 \x00 \x1f \" \\ /"},
    [1e-05, 2.5e-07, 0.0001, 0.00012, 1e16, 1.5e16, 1e15, -0.0, 5e-324, 1.7976931348623157e308],
    [math.nan, math.inf, -math.inf], {"x": None}, [None], "null", "1e-5", "0.00001",
    [2 ** 63, -(2 ** 63) - 1, 2 ** 64, 10 ** 30], {1: "int key"}, {None: 1, True: 2, 1.5: 3},
    [(1, 2), {"t": (3,)}], [], {}, "", 0, -1, 0.1, 100.0,
])
def test_dumps_is_the_standard_librarys(value: Any) -> None:
    assert transcoding.dumps(value) == _std(value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_dumps_is_the_standard_librarys_for_any_json(value: Any) -> None:
    try:
        expected = _std(value)
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, refused both ways
        with pytest.raises((UnicodeEncodeError, TypeError)):
            transcoding.dumps(value)
        return
    assert transcoding.dumps(value) == expected


def test_dumps_passes_what_orjson_would_write_differently_to_json() -> None:
    import dataclasses
    import datetime
    import enum

    class Kind(enum.IntEnum):
        A = 1

    class Text(str):
        pass

    @dataclasses.dataclass
    class Point:
        x: int

    for value in ([Kind.A], {"k": Text("v")}, {Text("k"): 1}):
        assert transcoding.dumps(value) == _std(value)
    for refused in (Point(1), datetime.datetime(2024, 1, 1)):
        with pytest.raises(TypeError):
            transcoding.dumps(refused)
