"""OpenAPI 3.1 from the bindings and their message descriptors.

Paths come from the `google.api.http` rules; schemas (under their full proto names) are the
proto3 JSON the gateway really writes and reads, checked by Schemathesis against the real stack
(tests/gateway/test_schemathesis.py). Descriptions are the protos' comments (`comments`, from
services/gateway/comments.py), where there are any.

What the gateway writes (response schemas, under the message's full name): every field without
presence, zero or not (so they are `required`), the others only when set; proto field names;
doubles as numbers or "NaN" / "Infinity" / "-Infinity"; 64-bit integers as decimal strings;
enums as names; Timestamps as RFC 3339; Durations as "1.5s"; bytes as base64; maps as objects.

What it reads (request schemas; a message that responses use too gets a second schema,
`<full name>-Input`): the same, and also 64-bit integers as JSON numbers and 32-bit ones as
strings of digits, numeric strings for doubles, enums by number, and null for any field that is
not REQUIRED (proto3 JSON: the field's default). Exactly that and no more:
`transcoding.check_body` refuses what json_format alone would also take. camelCase names
(json_name) are accepted as well but not listed. REQUIRED fields (`google.api.field_behavior`)
are `required`.
"""

from __future__ import annotations

import mimetypes
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from .bindings import HTTP_BODY, Binding, ResponseKind
from .streams import (
    NDJSON_MEDIA_TYPE,
    SSE_MEDIA_TYPE,
    STREAM_ERROR_EVENT,
    event_batch_field,
    sse_shape,
)
from .transcoding import BASE64_TEXT, FLOAT_SPECIALS, FLOAT_TEXT, RESUME_FIELD, WRAPPERS

ERROR_SCHEMA = "google.rpc.Status"
INPUT_SUFFIX = "-Input"  # not a character of a proto name, so never a message's own name
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# How far query parameters are flattened into nested messages (a.b.c); recursive messages stop.
_QUERY_DEPTH = 4

_F = FieldDescriptor
_INT32 = frozenset({_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32})
_UINT32 = frozenset({_F.TYPE_UINT32, _F.TYPE_FIXED32})
_INT64 = frozenset({_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64})
_UINT64 = frozenset({_F.TYPE_UINT64, _F.TYPE_FIXED64})
_INTS = _INT32 | _UINT32 | _INT64 | _UINT64
_FLOATS = frozenset({_F.TYPE_DOUBLE, _F.TYPE_FLOAT})
_FLOAT_MAX = 3.4028234663852886e38
_NULL = {"type": "null"}


def _range_of(t: int) -> tuple[str, int, int]:
    if t in _INT32:
        return "int32", -2**31, 2**31 - 1
    if t in _UINT32:
        return "uint32", 0, 2**32 - 1
    if t in _INT64:
        return "int64", -2**63, 2**63 - 1
    return "uint64", 0, 2**64 - 1


def _upto(n: int, *, zero: bool = True) -> str:
    """A regex (unanchored) of the decimal integers 0..n (1..n without `zero`), no leading zeros."""
    digits = str(n)
    k = len(digits)
    alternatives = ["0"] if zero else []
    if k > 2:
        alternatives.append(f"[1-9][0-9]{{0,{k - 2}}}")
    elif k == 2:
        alternatives.append("[1-9]")
    for i, ch in enumerate(digits):
        low, d = (1 if i == 0 else 0), int(ch)
        if d > low:
            rest = k - i - 1
            digit = str(low) if d - 1 == low else f"[{low}-{d - 1}]"
            alternatives.append(digits[:i] + digit + (f"[0-9]{{{rest}}}" if rest > 1 else "[0-9]" if rest else ""))
    alternatives.append(digits)
    return "|".join(dict.fromkeys(alternatives))


def _int_pattern(lo: int, hi: int) -> str:
    """The decimal strings (transcoding.INT_TEXT) of the integers in [lo, hi]; "-0" is 0."""
    negative = f"-(?:0|{_upto(-lo, zero=False)})" if lo < 0 else "-0"
    return f"^(?:{_upto(hi)}|{negative})$"


_FLOAT_PATTERN = f"^(?:{FLOAT_TEXT}|NaN|-?Infinity)$"
_SPECIALS = {"type": "string", "enum": list(FLOAT_SPECIALS)}
_BOOL_WORDS = ["true", "false", "True", "False", "TRUE", "FALSE", "t", "f", "T", "F", "1", "0"]
_STD_BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _scalar(field: FieldDescriptor, side: str) -> dict[str, Any]:
    """A non-message, non-enum field's value; side is "out" (responses), "in" (request bodies)
    or "text" (a query parameter, path variable or header: the value's text)."""
    t = field.type
    if t in _INTS:
        fmt, lo, hi = _range_of(t)
        number: dict[str, Any] = {"type": "integer", "format": fmt}
        if side != "text" or t in _UINT32 | _UINT64:
            # (A parameter's int32 and int64 keep to their registered formats, which imply the range.)
            number.update(minimum=lo, maximum=hi)
        text = {"type": "string", "format": fmt, "pattern": _int_pattern(lo, hi)}
        if side == "text":
            return number
        if side == "out":  # proto3 JSON: 64-bit integers are strings (JavaScript's numbers lose precision)
            return text if t in _INT64 | _UINT64 else number
        return {"anyOf": [text, number]} if t in _INT64 | _UINT64 else {"anyOf": [number, text]}
    if t in _FLOATS:
        number = {"type": "number", "format": "double" if t == _F.TYPE_DOUBLE else "float"}
        if side == "in":  # a larger JSON number is refused (no double holds it); text may be a number
            top = _FLOAT_MAX if t == _F.TYPE_FLOAT else sys.float_info.max
            number.update(minimum=-top, maximum=top)
            return {"anyOf": [number, {"type": "string", "pattern": _FLOAT_PATTERN}]}
        return {"anyOf": [number, _SPECIALS]}
    if t == _F.TYPE_BOOL:
        if side == "text":  # grpc-gateway's spellings (strconv.ParseBool)
            return {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": _BOOL_WORDS}]}
        return {"type": "boolean"}
    if t == _F.TYPE_BYTES:
        pattern = _STD_BASE64 if side == "out" else f"^{BASE64_TEXT}$"
        return {"type": "string", "contentEncoding": "base64", "pattern": pattern}
    return {"type": "string"}


_TIMESTAMP = {"type": "string", "format": "date-time",
              "description": "RFC 3339, e.g. 2024-01-02T03:04:05Z (output is always UTC, Z)"}
_DURATION = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
             "description": "seconds with an 's' suffix, e.g. 1.5s"}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": _TIMESTAMP,
    "google.protobuf.Duration": _DURATION,
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated field paths (lowerCamelCase)"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "required": ["@type"], "additionalProperties": True},
}
_ERROR = {
    "type": "object",
    "description": "A google.rpc.Status: the gRPC code (not the HTTP status), a message, and typed details.",
    "properties": {
        "code": {"type": "integer", "format": "int32", "description": "gRPC status code, e.g. 5 (NOT_FOUND)"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
    },
    "required": ["code", "message", "details"],
    "additionalProperties": False,
}
# The HTTP statuses an RPC's error can have (errors.HTTP_STATUS_FROM_CODE, grpc-gateway's table)
# and the gateway's own answers. FAILED_PRECONDITION is 400, never 412 (which is about HTTP
# conditional headers); CANCELLED (499) reaches no client.
_ERRORS: dict[str, str] = {
    "400": "INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; or a request the gateway cannot "
           "transcode (malformed JSON, an unknown field or query parameter, a bad header)",
    "401": "UNAUTHENTICATED: no valid bearer token",
    "403": "PERMISSION_DENIED",
    "404": "NOT_FOUND",
    "409": "ALREADY_EXISTS or ABORTED",
    "413": "The request body is larger than the gateway's limit (an upload: than the gateway's or the "
           "engine's, RESOURCE_EXHAUSTED with a google.rpc.ErrorInfo of reason UPLOAD_TOO_LARGE)",
    "415": "The request body is not JSON (send application/json)",
    "429": "RESOURCE_EXHAUSTED: a quota or limit; Retry-After when the engine says when to retry",
    "500": "INTERNAL, UNKNOWN or DATA_LOSS, or an error in the gateway",
    "501": "UNIMPLEMENTED: the engine does not serve this RPC",
    "503": "UNAVAILABLE: the engine cannot be reached or is shutting down; see Retry-After",
    "504": "DEADLINE_EXCEEDED (see Grpc-Timeout)",
}
_BODY_ONLY = frozenset({"413", "415"})
# An upload (a client stream of raw bytes) takes any Content-Type (the engine judges the file),
# and may stall.
_UPLOAD_ERRORS = {"408": "The request body stopped arriving (the gateway's upload idle timeout); the upload is "
                         "discarded"}
# The file types the uploads take (hindsight.v1.UploadDatasetRequest.chunk); the request's
# Content-Type is passed to the engine as each message's content_type.
UPLOAD_MEDIA_TYPES = ("text/csv", "application/gzip", "application/vnd.apache.parquet", "application/octet-stream")
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "required": False,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_REQUEST_ID = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
_DESCRIPTION = """\
REST, Server-Sent Events and downloads, generated from the gRPC service's `google.api.http` rules.

* JSON follows the proto3 JSON mapping with the proto field names (snake_case); requests may also
  use camelCase. Responses write every field that has no presence, zero values included. 64-bit
  integers are strings; enums are names; doubles are numbers or "NaN", "Infinity", "-Infinity";
  Timestamps are RFC 3339. Requests also take 64-bit integers as numbers, 32-bit ones and doubles
  as strings, enums by number, and null for a field's default.
* Errors are `{"code", "message", "details"}` (google.rpc.Status) with the HTTP status from
  grpc-gateway's table (INVALID_ARGUMENT → 400, NOT_FOUND → 404, UNAVAILABLE → 503, ...).
* Server streams answer `text/event-stream`: `id:` the event id, `event:` its kind, `data:` the
  event as JSON. Resume with `Last-Event-ID` (or `?after_event_id=`); 204 means nothing is left.
  A failure after the first event arrives as `event: stream_error`. `Accept: application/x-ndjson`
  gets one `{"result": ...}` per line instead, and a final `{"error": ...}` on failure.
* Uploads (client streams, e.g. `POST /api/v1/datasets/{symbol}:upload`) take the file as the raw
  request body with its Content-Type (`curl --data-binary @file.csv -H 'Content-Type: text/csv'`),
  streamed to the engine as it arrives; their other fields are query parameters. Over the size
  limit: 413.
* `Grpc-Timeout` (e.g. `10S`, `500m`) sets the deadline; `X-Request-Id` is passed on and returned.
"""


def build_openapi(bindings: Sequence[Binding], *, title: str = "Hindsight API",
                  version: str | None = None, comments: Mapping[str, str] | None = None,
                  max_upload_bytes: int | None = None) -> dict[str, Any]:
    """The document; `max_upload_bytes` (the gateway's upload limit) is said in the uploads'."""
    outputs = _reachable(m for b in bindings if b.kind is not ResponseKind.BYTES
                         for m in (b.method.output_type,))
    schemas = _Schemas(comments or {}, outputs)
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    ops: list[tuple[Binding, dict[str, Any]]] = []
    for binding in bindings:
        method = binding.http_method.lower()
        if method not in _OPENAPI_METHODS:
            continue
        op_id = f"{binding.method.containing_service.name}_{binding.method.name}"
        n = 1
        while op_id in used_ids:
            n += 1
            op_id = f"{binding.method.containing_service.name}_{binding.method.name}{n}"
        used_ids.add(op_id)
        op = _operation(binding, op_id, schemas, max_upload_bytes)
        paths.setdefault(binding.template.openapi_path(), {})[method] = op
        ops.append((binding, op))
    _add_links(ops)
    paths["/healthz"] = {"get": _plain_op("gateway_healthz", "The gateway is up.", {"200": "Up."})}
    paths["/readyz"] = {"get": _plain_op("gateway_readyz", "The engine answers its gRPC health check.",
                                         {"200": "The engine is SERVING.", "503": "The engine is not ready."})}
    # POST/DELETE /api/v1/session, the dashboard's sign-in: a route of the gateway's own (session.py).
    from .session import openapi_paths as session_paths

    paths.update(session_paths(bindings, lambda desc: schemas.message(desc, "out"), _REQUEST_ID, _ref(ERROR_SCHEMA)))
    if version is None:
        packages = {b.method.containing_service.file.package for b in bindings}
        version = "/".join(sorted(p.rsplit(".", 1)[-1] for p in packages)) or "1"
    components: dict[str, Any] = {
        "schemas": {**dict(sorted(schemas.schemas.items())), ERROR_SCHEMA: _ERROR},
        "parameters": {
            "GrpcTimeout": {"name": "Grpc-Timeout", "in": "header", "required": False,
                            "description": "Deadline, gRPC format: digits and a unit (H, M, S, m, u, n), "
                                           "e.g. 10S or 500m. Unary calls default to 30 s; streams and uploads "
                                           "have none.",
                            "schema": {"type": "string", "pattern": "^[ \\t]*[0-9]{1,8}[HMSmun][ \\t]*$"}},
            "RequestId": {"name": "X-Request-Id", "in": "header", "required": False,
                          "description": "Passed to the engine and returned; made up when absent (or not "
                                         "1-128 visible ASCII characters).",
                          "schema": {"type": "string"}},
        },
        "headers": {
            "RequestId": {"description": "The request's id: the one sent, else a new one.", "required": True,
                          "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "Authorization is passed on to the engine as metadata."}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": _DESCRIPTION},
            "paths": paths, "components": components}


def _plain_op(op_id: str, summary: str, statuses: dict[str, str]) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "tags": ["gateway"],
            "responses": {code: {"description": text, "headers": dict(_REQUEST_ID),
                                 "content": {"application/json": {"schema": {
                                     "type": "object", "properties": {"status": {"type": "string"}}}}}}
                          for code, text in statuses.items()}}


def _operation(binding: Binding, op_id: str, schemas: _Schemas, max_upload_bytes: int | None) -> dict[str, Any]:
    method = binding.method
    request = method.input_type
    path_fields = {v.name for v in binding.template.variables}
    params: list[dict[str, Any]] = []
    for var in binding.template.variables:
        field = _field_at(request, var.field_path)
        schema = schemas.text(field)
        if not var.multi_segment and schema.get("type") == "string":
            schema["minLength"] = 1  # a segment is never empty
        params.append(schemas.described({"name": var.name, "in": "path", "required": True, "schema": schema}, field))
    if binding.body != "*":
        for name, field in _query_fields(request, "", 0, frozenset()):
            if name in path_fields or name.split(".")[0] == binding.body:
                continue
            param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schemas.text(field)}
            if field.is_repeated:
                param.update(style="form", explode=True)
            params.append(schemas.described(param, field))
    streaming = binding.kind is ResponseKind.STREAM
    if streaming and RESUME_FIELD in request.fields_by_name:
        params.append({"name": "Last-Event-ID", "in": "header", "required": False,
                       "description": f"Resume after this event (sets {RESUME_FIELD}; wins over the query).",
                       "schema": schemas.text(request.fields_by_name[RESUME_FIELD], header=True)})
    params.append({"$ref": "#/components/parameters/GrpcTimeout"})
    params.append({"$ref": "#/components/parameters/RequestId"})
    doc = schemas.comments.get(method.full_name, "")
    op: dict[str, Any] = {"operationId": op_id, "tags": [method.containing_service.name],
                          "summary": _first_sentence(doc) or method.name,
                          "description": f"{doc}\n\ngRPC: `{method.full_name}`" if doc else f"gRPC: `{method.full_name}`",
                          "parameters": params, "security": [{}, {"bearer": []}]}
    if binding.request_stream:
        op["requestBody"] = _upload_body(binding, max_upload_bytes)
    elif binding.body:
        op["requestBody"] = _request_body(binding, schemas)
    if binding.kind is ResponseKind.UNARY:
        schema = (schemas.field(method.output_type.fields_by_name[binding.response_body], "out")
                  if binding.response_body else schemas.message(method.output_type, "out"))
        responses: dict[str, Any] = {"200": {"description": "OK", "headers": dict(_REQUEST_ID),
                                             "content": {"application/json": {"schema": schema}}}}
    elif streaming:
        out = schemas.message(method.output_type, "out")
        responses = {
            "200": {"description": _stream_description(method.output_type), "headers": dict(_REQUEST_ID),
                    "content": {SSE_MEDIA_TYPE: {"schema": _sse_event(method.output_type, out)},
                                NDJSON_MEDIA_TYPE: {"schema": {"type": "object", "properties": {
                                    "result": out, "error": {"$ref": _ref(ERROR_SCHEMA)}}}}}},
            "204": {"description": "Nothing after the cursor: the stream has ended.", "headers": dict(_REQUEST_ID)},
        }
    else:
        media = _download_type(binding)
        responses = {"200": {"description": "The file, streamed.",
                             "headers": {"Content-Disposition": {"schema": {"type": "string"}, "required": True,
                                                                 "description": "attachment; filename=..."},
                                         **_REQUEST_ID},
                             "content": {media: {"schema": {"type": "string", "format": "binary",
                                                            "contentMediaType": media}}}}}
    responses.update(_error_responses(binding))
    op["responses"] = responses
    return op


def _upload_body(binding: Binding, max_upload_bytes: int | None) -> dict[str, Any]:
    """A client stream's body: the raw bytes of a file, streamed to the engine."""
    limit = f"at most {max_upload_bytes / (1 << 20):g} MiB; " if max_upload_bytes else ""
    text = (f"The file, as the raw request body ({limit}with a Content-Length or chunked). "
            f"It is streamed to the engine as it arrives: the first message of the gRPC client stream "
            f"holds the path and query parameters, each later one a piece of the file in `{binding.body}` "
            f"with the request's Content-Type.")
    return {"required": True, "description": text,
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in UPLOAD_MEDIA_TYPES}}


def _request_body(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    request = binding.method.input_type
    target = None if binding.body == "*" else request.fields_by_name[binding.body]
    target_type = target.message_type if target is not None else request
    if target_type is not None and target_type.full_name == HTTP_BODY and not (target and target.is_repeated):
        # The raw bytes, whatever their type (google.api.HttpBody).
        return {"required": False, "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    schema = _body_schema(binding, schemas)
    # An empty body is an empty message: the body is required only when it has REQUIRED fields.
    bound = {v.field_path[0] for v in binding.template.variables}
    required = (any(_is_required(f) for f in request.fields if f.name not in bound) if target is None
                else _is_required(target))
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _error_responses(binding: Binding) -> dict[str, Any]:
    def error(text: str, code: str) -> dict[str, Any]:
        headers = {**_REQUEST_ID, **(_RETRY_AFTER if code in ("429", "503") else {})}
        return {"description": f"{text} (a google.rpc.Status).", "headers": headers,
                "content": {"application/json": {"schema": {"$ref": _ref(ERROR_SCHEMA)}}}}

    if binding.request_stream:
        errors = {**_UPLOAD_ERRORS, **{code: text for code, text in _ERRORS.items() if code != "415"}}
    else:
        takes_json = bool(binding.body)
        errors = {code: text for code, text in _ERRORS.items() if takes_json or code not in _BODY_ONLY}
    out = {code: error(text, code) for code, text in sorted(errors.items())}
    out["default"] = {"description": "An error (google.rpc.Status).",
                      "content": {"application/json": {"schema": {"$ref": _ref(ERROR_SCHEMA)}}}}
    return out


def _sse_event(desc: Descriptor, out: dict[str, Any]) -> dict[str, Any]:
    """One event of the stream as Schemathesis (and the SSE spec) read it: `data` is the message's
    JSON (a google.rpc.Status for stream_error), `event` its kind ("message" when unnamed)."""
    id_of, oneof = sse_shape(desc)
    kinds = [f.name for f in desc.oneofs_by_name[oneof].fields] if oneof else ["message"]

    def data(schema: dict[str, Any]) -> dict[str, Any]:
        return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}

    props: dict[str, Any] = {"retry": {"type": "integer", "minimum": 0}}
    if id_of is not None:
        props["id"] = {"type": "string", "pattern": "^[0-9]+$"}
    return {"type": "object", "required": ["data", "event"], "properties": props,
            "oneOf": [{"properties": {"event": {"enum": kinds}, "data": data(out)}},
                      {"properties": {"event": {"const": STREAM_ERROR_EVENT},
                                      "data": data({"$ref": _ref(ERROR_SCHEMA)})}}]}


def _stream_description(desc: Descriptor) -> str:
    id_of, oneof = sse_shape(desc)
    parts = []
    if id_of is not None:
        batch = event_batch_field(desc) is not None
        parts.append("`id:` the id of the batch's last event" if batch else "`id:` the event id")
    if oneof is not None:
        parts.append(f"`event:` the kind (the set field of `{oneof}`)")
    parts.append("`data:` the message as JSON")
    return (f"A stream of {desc.name}. SSE: {', '.join(parts)}; a failure after the first message is "
            f"`event: {STREAM_ERROR_EVENT}` with a google.rpc.Status. NDJSON: one `{{\"result\": ...}}` per "
            f"line, and a final `{{\"error\": ...}}` on failure.")


def _body_schema(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    request = binding.method.input_type
    if binding.body != "*":
        return schemas.field(request.fields_by_name[binding.body], "in")
    bound = {v.field_path[0] for v in binding.template.variables if len(v.field_path) == 1}
    if not bound:
        return schemas.message(request, "in")
    # The body carries every field that the path does not (one the path sets too is overridden).
    return schemas.object(request, "in", skip=bound)


def _add_links(ops: Sequence[tuple[Binding, dict[str, Any]]]) -> None:
    """OpenAPI links from each JSON response to the operations whose path variables it holds: a
    top-level field of the same name (StartBacktest's backtest_id → GetBacktest, ...), else that
    field of the first element of a top-level repeated message (daily_summaries[0].date → GetDay).
    A path variable the source's own request path has is carried over."""
    for source, op in ops:
        if source.kind is not ResponseKind.UNARY or source.response_body:
            continue
        links: dict[str, Any] = {}
        for target, target_op in ops:
            if target is source or not target.template.variables:
                continue
            values: dict[str, str] = {}
            for var in target.template.variables:
                found = _link_value(source, var.name)
                if found is None:
                    break
                values[var.name] = found
            else:
                links[target_op["operationId"]] = {"operationId": target_op["operationId"], "parameters": values}
        if links:
            op["responses"]["200"]["links"] = links


def _link_value(source: Binding, name: str) -> str | None:
    if "." in name:
        return None
    out = source.method.output_type
    field = out.fields_by_name.get(name)
    if field is not None and field.message_type is None and not field.is_repeated:
        return f"$response.body#/{name}"
    for f in out.fields:
        inner = f.message_type.fields_by_name.get(name) if f.message_type is not None and f.is_repeated else None
        if inner is not None and not f.message_type.GetOptions().map_entry and inner.message_type is None \
                and not inner.is_repeated:
            return f"$response.body#/{f.name}/0/{name}"
    if any(v.name == name for v in source.template.variables):
        return f"$request.path.{name}"
    return None


def _query_fields(desc: Descriptor, prefix: str, depth: int,
                  seen: frozenset[str]) -> list[tuple[str, FieldDescriptor]]:
    out: list[tuple[str, FieldDescriptor]] = []
    seen = seen | {desc.full_name}
    for field in desc.fields:
        name = prefix + field.name
        mt = field.message_type
        if mt is None or mt.full_name in _WELL_KNOWN or mt.full_name in WRAPPERS:
            if mt is None or mt.full_name not in ("google.protobuf.Any", "google.protobuf.Empty"):
                out.append((name, field))
        elif (not field.is_repeated and not mt.GetOptions().map_entry
              and depth < _QUERY_DEPTH and mt.full_name not in seen):
            out.extend(_query_fields(mt, name + ".", depth + 1, seen))
    return out


def _field_at(desc: Descriptor, path: Sequence[str]) -> FieldDescriptor:
    field = desc.fields_by_name[path[0]]
    for part in path[1:]:
        field = field.message_type.fields_by_name[part]
    return field


def _download_type(binding: Binding) -> str:
    last = binding.template.segments[-1] if binding.template.segments else ""
    guessed = mimetypes.guess_type("x/" + last)[0] if isinstance(last, str) else None
    return guessed or "application/octet-stream"


def _first_sentence(text: str) -> str:
    first = text.split("\n\n", 1)[0].replace("\n", " ")
    end = first.find(". ")
    return (first[:end + 1] if end >= 0 else first).strip()


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _reachable(roots: Iterable[Descriptor]) -> frozenset[str]:
    """Full names of the root messages and of every message their fields (nested) hold."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        desc = todo.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        for field in desc.fields:
            if field.message_type is not None:
                todo.append(field.message_type)
    return frozenset(seen)


class _Schemas:
    """Collects component schemas (messages by full name, and enums) as fields refer to them.

    A message has one schema per side, "out" (what the gateway writes) and "in" (what it reads);
    the request side's is named `<full name>-Input` when responses use the message too."""

    def __init__(self, comments: Mapping[str, str], outputs: frozenset[str]) -> None:
        self.schemas: dict[str, Any] = {}
        self.comments = comments
        self._outputs = outputs

    def described(self, where: dict[str, Any], field: FieldDescriptor) -> dict[str, Any]:
        """`where` with the field's comment as its description, if it has one."""
        text = self.comments.get(field.full_name)
        if text:
            where["description"] = text
        return where

    def _name(self, desc: Descriptor, side: str) -> str:
        if side == "in" and desc.full_name in self._outputs:
            return desc.full_name + INPUT_SUFFIX
        return str(desc.full_name)

    def message(self, desc: Descriptor, side: str) -> dict[str, Any]:
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if desc.full_name in WRAPPERS:
            return self._single(desc.fields_by_name["value"], side)
        name = self._name(desc, side)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: messages may be recursive
            self.schemas[name] = self.object(desc, side)
        return {"$ref": _ref(name)}

    def object(self, desc: Descriptor, side: str, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
        fields = [f for f in desc.fields if f.name not in skip]
        props = {f.name: self.described(self.field(f, side), f) for f in fields}
        schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        # Requests: REQUIRED fields. Responses: every field without presence is written.
        required = [f.name for f in fields if (_is_required(f) if side == "in" else not f.has_presence)]
        if required:
            schema["required"] = required
        notes = [self.comments.get(desc.full_name, "")]
        oneofs = [o for o in desc.oneofs if not (len(o.fields) == 1 and o.name == "_" + o.fields[0].name)]
        notes += [f"At most one of {', '.join(f.name for f in o.fields)} ({o.name})." for o in oneofs]
        at_most_one = [_at_most_one([f.name for f in o.fields if f.name not in skip], side) for o in oneofs]
        at_most_one = [c for c in at_most_one if c]
        if at_most_one:
            schema["allOf"] = at_most_one
        if any(notes):
            schema["description"] = "\n\n".join(n for n in notes if n)
        return schema

    def enum(self, desc: EnumDescriptor) -> dict[str, Any]:
        if desc.full_name not in self.schemas:
            # Written by name; read by name or number (the numbers it defines).
            schema: dict[str, Any] = {"enum": [v.name for v in desc.values] + [v.number for v in desc.values]}
            lines = [self.comments.get(desc.full_name, "")]
            lines += [f"- `{v.name}`: {self.comments[f'{desc.full_name}.{v.name}']}" for v in desc.values
                      if f"{desc.full_name}.{v.name}" in self.comments]
            if any(lines):
                schema["description"] = "\n".join(line for line in lines if line)
            self.schemas[desc.full_name] = schema
        return {"$ref": _ref(desc.full_name)}

    def field(self, field: FieldDescriptor, side: str, *, nullable: bool | None = None) -> dict[str, Any]:
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            values = self._single(mt.fields_by_name["value"], side)
            schema: dict[str, Any] = {"type": "object", "additionalProperties": values}
            keys = mt.fields_by_name["key"]
            if keys.type in _INTS:
                schema["propertyNames"] = {"pattern": _int_pattern(*_range_of(keys.type)[1:])}
            elif keys.type == _F.TYPE_BOOL:
                schema["propertyNames"] = {"enum": ["true", "false"]}
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field, side)}
        else:
            schema = self._single(field, side)
        if nullable is None:
            nullable = side == "in" and not _is_required(field)
        if nullable:  # proto3 JSON: null is the field's default value
            schema = _or_null(schema)
        return schema

    def text(self, field: FieldDescriptor, *, header: bool = False) -> dict[str, Any]:
        """A query parameter's, path variable's or header's value (repeated: the list of them).

        A header's integer is described as the string it is (a header has no JSON type)."""
        mt = field.message_type
        if header and field.type in _INTS and not field.is_repeated:
            fmt, lo, hi = _range_of(field.type)
            return {"type": "string", "format": fmt, "pattern": _int_pattern(lo, hi)}
        if mt is not None and mt.full_name in WRAPPERS:
            item = self.text(mt.fields_by_name["value"])
        elif mt is not None:
            item = dict(_WELL_KNOWN[mt.full_name])
        elif field.type == _F.TYPE_ENUM:
            item = self.enum(field.enum_type)
        else:
            item = _scalar(field, "text")
        return {"type": "array", "items": item} if field.is_repeated else item

    def _single(self, field: FieldDescriptor, side: str) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE or field.type == FieldDescriptor.TYPE_GROUP:
            return self.message(field.message_type, side)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(field.enum_type)
        return _scalar(field, side)


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema and "anyOf" not in schema:
        return {**schema, "type": [kind, "null"]}
    if "anyOf" in schema and len(schema) == 1:
        return {"anyOf": [*schema["anyOf"], _NULL]}
    return {"anyOf": [schema, _NULL]}


def _at_most_one(names: list[str], side: str) -> dict[str, Any] | None:
    """At most one member of a oneof is set: in a request, present and not null (json_format
    ignores a null member); in a response, present. One branch per member: every other is unset."""
    if len(names) < 2:
        return None
    unset: Any = _NULL if side == "in" else False
    return {"anyOf": [{"properties": {other: unset for other in names if other != name}} for name in names]}


def _is_required(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors

