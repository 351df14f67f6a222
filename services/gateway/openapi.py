"""OpenAPI 3.1 from the bindings and their message descriptors.

Paths come from the `google.api.http` rules; schemas (under their full proto names) follow the
proto3 JSON mapping the gateway speaks: snake_case names, enums as strings, 64-bit integers as
strings, Timestamp as date-time, maps as objects. Descriptions are the protos' comments
(`comments`, from services/gateway/comments.py), where there are any.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from .bindings import Binding, ResponseKind
from .streams import NDJSON_MEDIA_TYPE, SSE_MEDIA_TYPE, STREAM_ERROR_EVENT, event_batch_field, sse_shape
from .transcoding import RESUME_FIELD

ERROR_SCHEMA = "google.rpc.Status"
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# How far query parameters are flattened into nested messages (a.b.c); recursive messages stop.
_QUERY_DEPTH = 4

_F = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _F.TYPE_FLOAT: {"type": "number", "format": "float"},
    _F.TYPE_INT32: {"type": "integer", "format": "int32"},
    _F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _F.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    _F.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose precision).
    _F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _F.TYPE_BOOL: {"type": "boolean"},
    _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                                 "description": "seconds with an 's' suffix, e.g. 1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated field paths"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "required": ["@type"], "additionalProperties": True},
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
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
}
_DESCRIPTION = """\
REST, Server-Sent Events and downloads, generated from the gRPC service's `google.api.http` rules.

* JSON follows the proto3 JSON mapping with the proto field names (snake_case); requests may also
  use camelCase. 64-bit integers are strings; enums are names.
* Errors are `{"code", "message", "details"}` (google.rpc.Status) with the HTTP status from
  grpc-gateway's table (INVALID_ARGUMENT → 400, NOT_FOUND → 404, UNAVAILABLE → 503, ...).
* Server streams answer `text/event-stream`: `id:` the event id, `event:` its kind, `data:` the
  event as JSON. Resume with `Last-Event-ID` (or `?after_event_id=`); 204 means nothing is left.
  A failure after the first event arrives as `event: stream_error`. `Accept: application/x-ndjson`
  gets one `{"result": ...}` per line instead, and a final `{"error": ...}` on failure.
* `Grpc-Timeout` (e.g. `10S`, `500m`) sets the deadline; `X-Request-Id` is passed on and returned.
"""


def build_openapi(bindings: Sequence[Binding], *, title: str = "Hindsight API",
                  version: str | None = None, comments: Mapping[str, str] | None = None) -> dict[str, Any]:
    schemas = _Schemas(comments or {})
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
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
        paths.setdefault(binding.template.openapi_path(), {})[method] = _operation(binding, op_id, schemas)
    paths["/healthz"] = {"get": _plain_op("gateway_healthz", "The gateway is up.", {"200": "Up."})}
    paths["/readyz"] = {"get": _plain_op("gateway_readyz", "The engine answers its gRPC health check.",
                                         {"200": "The engine is SERVING.", "503": "The engine is not ready."})}
    if version is None:
        packages = {b.method.containing_service.file.package for b in bindings}
        version = "/".join(sorted(p.rsplit(".", 1)[-1] for p in packages)) or "1"
    components: dict[str, Any] = {
        "schemas": {**dict(sorted(schemas.schemas.items())), ERROR_SCHEMA: _ERROR},
        "parameters": {
            "GrpcTimeout": {"name": "Grpc-Timeout", "in": "header", "required": False,
                            "description": "Deadline, gRPC format: digits and a unit (H, M, S, m, u, n), "
                                           "e.g. 10S or 500m. Unary calls default to 30 s; streams have none.",
                            "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"}},
            "RequestId": {"name": "X-Request-Id", "in": "header", "required": False,
                          "description": "Passed to the engine and returned; made up when absent.",
                          "schema": {"type": "string"}},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "Authorization is passed on to the engine as metadata."}},
    }
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": _DESCRIPTION},
            "paths": paths, "components": components}


def _plain_op(op_id: str, summary: str, statuses: dict[str, str]) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "tags": ["gateway"],
            "responses": {code: {"description": text, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "string"}}}}}}
                for code, text in statuses.items()}}


def _operation(binding: Binding, op_id: str, schemas: _Schemas) -> dict[str, Any]:
    method = binding.method
    request = method.input_type
    path_fields = {v.name for v in binding.template.variables}
    params: list[dict[str, Any]] = []
    for var in binding.template.variables:
        field = _field_at(request, var.field_path)
        params.append(schemas.described({"name": var.name, "in": "path", "required": True,
                                         "schema": schemas.field(field)}, field))
    if binding.body != "*":
        for name, field in _query_fields(request, "", 0, frozenset()):
            if name in path_fields or name.split(".")[0] == binding.body:
                continue
            schema = schemas.field(field)
            param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
            if field.is_repeated:
                param.update(style="form", explode=True)
            params.append(schemas.described(param, field))
    streaming = binding.kind is ResponseKind.STREAM
    if streaming and RESUME_FIELD in request.fields_by_name:
        params.append({"name": "Last-Event-ID", "in": "header", "required": False,
                       "description": f"Resume after this event (sets {RESUME_FIELD}; wins over the query).",
                       "schema": _SCALARS[request.fields_by_name[RESUME_FIELD].type]})
    params.append({"$ref": "#/components/parameters/GrpcTimeout"})
    params.append({"$ref": "#/components/parameters/RequestId"})
    doc = schemas.comments.get(method.full_name, "")
    op: dict[str, Any] = {"operationId": op_id, "tags": [method.containing_service.name],
                          "summary": _first_sentence(doc) or method.name,
                          "description": f"{doc}\n\ngRPC: `{method.full_name}`" if doc else f"gRPC: `{method.full_name}`",
                          "parameters": params, "security": [{}, {"bearer": []}]}
    if binding.body:
        op["requestBody"] = {"required": binding.body == "*",
                             "content": {"application/json": {"schema": _body_schema(binding, schemas)}}}
    error = {"description": "An error (google.rpc.Status).",
             "content": {"application/json": {"schema": {"$ref": _ref(ERROR_SCHEMA)}}}}
    out_ref = {"$ref": _ref(method.output_type.full_name)} if binding.kind is not ResponseKind.BYTES else None
    if binding.kind is ResponseKind.UNARY:
        schema = (schemas.field(method.output_type.fields_by_name[binding.response_body])
                  if binding.response_body else schemas.message(method.output_type))
        responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
    elif streaming:
        schemas.message(method.output_type)
        responses = {
            "200": {"description": _stream_description(method.output_type),
                    "content": {SSE_MEDIA_TYPE: {"schema": out_ref},
                                NDJSON_MEDIA_TYPE: {"schema": {"type": "object", "properties": {
                                    "result": out_ref, "error": {"$ref": _ref(ERROR_SCHEMA)}}}}}},
            "204": {"description": "Nothing after the cursor: the stream has ended."},
        }
    else:
        media = _download_type(binding)
        responses = {"200": {"description": "The file, streamed.",
                             "headers": {"Content-Disposition": {"schema": {"type": "string"},
                                                                 "description": "attachment; filename=..."}},
                             "content": {media: {"schema": {"type": "string", "contentMediaType": media}}}}}
    responses["default"] = error
    op["responses"] = responses
    return op


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
        return schemas.field(request.fields_by_name[binding.body])
    bound = {v.field_path[0] for v in binding.template.variables if len(v.field_path) == 1}
    if not bound:
        return schemas.message(request)
    # The body carries every field that the path does not.
    props = {f.name: schemas.field(f) for f in request.fields if f.name not in bound}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _query_fields(desc: Descriptor, prefix: str, depth: int,
                  seen: frozenset[str]) -> list[tuple[str, FieldDescriptor]]:
    out: list[tuple[str, FieldDescriptor]] = []
    seen = seen | {desc.full_name}
    for field in desc.fields:
        name = prefix + field.name
        mt = field.message_type
        if mt is None or mt.full_name in _WELL_KNOWN:
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


class _Schemas:
    """Collects component schemas (messages and enums, by full name) as fields refer to them."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.schemas: dict[str, Any] = {}
        self.comments = comments

    def described(self, where: dict[str, Any], field: FieldDescriptor) -> dict[str, Any]:
        """`where` with the field's comment as its description, if it has one."""
        text = self.comments.get(field.full_name)
        if text:
            where["description"] = text
        return where

    def message(self, desc: Descriptor) -> dict[str, Any]:
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if desc.full_name not in self.schemas:
            self.schemas[desc.full_name] = {}  # placeholder first: messages may be recursive
            props = {f.name: self.described(self.field(f), f) for f in desc.fields}
            schema: dict[str, Any] = {"type": "object", "properties": props}
            required = [f.name for f in desc.fields if _is_required(f)]
            if required:
                schema["required"] = required
            notes = [self.comments.get(desc.full_name, "")]
            oneofs = [o for o in desc.oneofs if not (len(o.fields) == 1 and o.name == "_" + o.fields[0].name)]
            notes += [f"At most one of {', '.join(f.name for f in o.fields)} ({o.name})." for o in oneofs]
            if any(notes):
                schema["description"] = "\n\n".join(n for n in notes if n)
            self.schemas[desc.full_name] = schema
        return {"$ref": _ref(desc.full_name)}

    def enum(self, desc: EnumDescriptor) -> dict[str, Any]:
        if desc.full_name not in self.schemas:
            schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in desc.values]}
            lines = [self.comments.get(desc.full_name, "")]
            lines += [f"- `{v.name}`: {self.comments[f'{desc.full_name}.{v.name}']}" for v in desc.values
                      if f"{desc.full_name}.{v.name}" in self.comments]
            if any(lines):
                schema["description"] = "\n".join(line for line in lines if line)
            self.schemas[desc.full_name] = schema
        return {"$ref": _ref(desc.full_name)}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self._single(mt.fields_by_name["value"])}
        item = self._single(field)
        if field.is_repeated:
            return {"type": "array", "items": item}
        return item

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE or field.type == FieldDescriptor.TYPE_GROUP:
            return self.message(field.message_type)
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])


def _is_required(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors
