"""gRPC status → HTTP: one table, one error body.

The table is grpc-gateway's `HTTPStatusFromCode` (runtime/errors.go). The body is the
`google.rpc.Status` as JSON, `{"code", "message", "details"}`, with the rich details the engine
sent in its `grpc-status-details-bin` trailer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

# Importing error_details_pb2 registers BadRequest, RetryInfo, ... so that their Any-packed
# forms can be written as JSON; it is used below for RetryInfo as well.

HTTP_STATUS_FROM_CODE: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,  # grpc-gateway: "Client Closed Request"
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    # Deliberately not 412 Precondition Failed, which is about HTTP conditional headers.
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

_CODE_BY_NUMBER: Mapping[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}

# Where a google.rpc.ErrorInfo's reason says more than the code, HTTP has a precise answer:
# (code, reason) -> HTTP status. An upload over the engine's size limit is 413 Content Too
# Large, as the gateway's own limit is; other RESOURCE_EXHAUSTED (quotas) stay 429.
UPLOAD_TOO_LARGE = "UPLOAD_TOO_LARGE"
HTTP_STATUS_FROM_REASON: Mapping[tuple[int, str], int] = {
    (code_pb2.RESOURCE_EXHAUSTED, UPLOAD_TOO_LARGE): 413,
}


def http_status(code: grpc.StatusCode | int) -> int:
    if isinstance(code, int):
        code = _CODE_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return HTTP_STATUS_FROM_CODE.get(code, 500)


def status_http(status: status_pb2.Status) -> int:
    """The HTTP status of a google.rpc.Status: the table's, unless an ErrorInfo's reason has one
    of its own (HTTP_STATUS_FROM_REASON)."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            special = HTTP_STATUS_FROM_REASON.get((status.code, info.reason))
            if special is not None:
                return special
    return http_status(status.code)


class GatewayError(Exception):
    """An error the gateway itself answers (bad input, wrong content type, no route ...).

    `http_status` overrides the table where HTTP has a more precise answer (413, 415, 405).
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, http_status: int | None = None,
                 details: Sequence[Message] = (), headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else HTTP_STATUS_FROM_CODE.get(code, 500)
        self.details = tuple(details)
        self.headers = dict(headers or {})

    def to_status(self) -> status_pb2.Status:
        return make_status(self.code, self.message, self.details)


def bad_request(message: str, *violations: tuple[str, str]) -> GatewayError:
    """INVALID_ARGUMENT (400) with a google.rpc.BadRequest naming the offending fields."""
    details: list[Message] = []
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations]))
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, message, details=details)


def upload_too_large(limit: int) -> GatewayError:
    """The gateway's answer to an upload over `limit` bytes: what the engine answers over its own
    (RESOURCE_EXHAUSTED, ErrorInfo UPLOAD_TOO_LARGE), 413."""
    info = error_details_pb2.ErrorInfo(reason=UPLOAD_TOO_LARGE, domain="hindsight",
                                       metadata={"limit_bytes": str(limit)})
    return GatewayError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"the upload is larger than the gateway's limit of {limit} bytes ({limit / (1 << 20):g} MiB)",
                        http_status=413, details=[info])


def make_status(code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


def status_from_rpc_error(error: grpc.RpcError) -> status_pb2.Status:
    """The status a failed call ended with, rich details included when the engine sent them."""
    try:
        rich = rpc_status.from_call(error)  # AioRpcError has the methods of a grpc.Call it needs
    except ValueError:  # a details trailer that contradicts the call's own code or message
        rich = None
    if rich is not None:
        return rich
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else ""
    return status_pb2.Status(code=code.value[0], message=details or "")


def status_to_dict(status: status_pb2.Status) -> dict[str, Any]:
    return {"code": status.code, "message": status.message, "details": [_any_to_dict(a) for a in status.details]}


def status_headers(status: status_pb2.Status, retry_after_s: int) -> dict[str, str]:
    """Retry-After for 503s (and for any status whose details carry a google.rpc.RetryInfo);
    WWW-Authenticate for 401s."""
    headers: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            seconds = info.retry_delay.seconds + (1 if info.retry_delay.nanos > 0 else 0)
            headers["retry-after"] = str(max(seconds, 0))
    if "retry-after" not in headers and status.code == code_pb2.UNAVAILABLE:
        headers["retry-after"] = str(retry_after_s)
    if status.code == code_pb2.UNAUTHENTICATED:  # 401 must say how to authenticate (RFC 9110)
        headers["www-authenticate"] = 'Bearer realm="hindsight"'
    return headers


def error_body(status: status_pb2.Status) -> bytes:
    return json.dumps(status_to_dict(status), ensure_ascii=False, separators=(",", ":")).encode()


def _any_to_dict(detail: any_pb2.Any) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json_format.MessageToDict(detail, preserving_proto_field_name=True))
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process does not know: pass it on undecoded rather than lose it.
        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}
