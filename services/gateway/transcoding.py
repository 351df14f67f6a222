"""HTTP request → request message, message → JSON (proto3 JSON mapping via `json_format`).

Path variables are set first-class; the body (`*` or one field) comes from JSON; every other
field may come from a query parameter (`a.b` for nested fields, `?x=1&x=2` for repeated ones,
enums by name or number). Output uses the proto field names (snake_case); input takes both.

Input is proto3 JSON exactly as services/gateway/openapi.py describes it, no looser:
`json_format` alone also takes what Python's `int()` and `float()` take (" 5", "1_000", "٣",
"inf", true as 1), any number for an enum (1.5 as 1, "2", numbers it does not define) and
a JSON array for a message, and fails with a 500 on a 400-digit number for a double.
`check_body` refuses those first, with the field's path; the query parameters' text takes the
same grammar (`INT_TEXT`, `FLOAT_TEXT`, `BASE64_TEXT`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    EnumValueDescriptor,
    FieldDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from .bindings import HTTP_BODY, Binding
from .errors import GatewayError, bad_request
from .jsonenc import message_to_dict

# Messages a single query parameter can carry: their proto3 JSON form is a plain string,
# number or boolean.
_SCALAR_WKT = frozenset({
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
})
_JSON_WKT = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_TRUE = frozenset({"true", "True", "TRUE", "t", "T", "1"})
_FALSE = frozenset({"false", "False", "FALSE", "f", "F", "0"})
_INT_TYPES = frozenset({
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
})
# A request field of this name takes an SSE `Last-Event-ID` (the stream's resume cursor).
RESUME_FIELD = "after_event_id"

# The text of an integer (a JSON string in a body, a query parameter, Last-Event-ID): ASCII
# digits, an optional minus, no leading zeros, no exponent. Its range is the field's.
INT_TEXT = r"-?(?:0|[1-9][0-9]*)"
# The text of a float or double: a JSON number, or one of the special values. A number too
# large for a double is ±Infinity (as json_format reads it).
FLOAT_TEXT = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
FLOAT_SPECIALS = ("NaN", "Infinity", "-Infinity")
# bytes: base64, standard or URL-safe alphabet, padding optional (as grpc-gateway accepts).
BASE64_TEXT = r"(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?"
_INT_RE = re.compile(INT_TEXT)
_FLOAT_RE = re.compile(FLOAT_TEXT)
_BASE64_RE = re.compile(BASE64_TEXT)
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
# google.protobuf wrappers: their JSON is the JSON of their `value` field.
WRAPPERS = frozenset({
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
})


def to_dict(message: Message) -> dict[str, Any]:
    # Fields without presence are written even when zero, so that clients (and the dashboard)
    # see `"total_trades": 0` rather than a missing key.
    # jsonenc.message_to_dict is json_format.MessageToDict with preserving_proto_field_name and
    # always_print_fields_with_no_presence, exactly (key order included), several times faster.
    return cast(dict[str, Any], message_to_dict(message))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON: `json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()`.

    orjson writes the same bytes ~10x faster, except where the two differ, which its output
    shows: a float below 1e-4 (orjson: 0.00001 or 1e-7; json: 1e-05, 1e-07), NaN and ±inf
    (orjson: null; json: NaN, Infinity), an int beyond 64 bits, a key that is not a string, a
    subclass of str, int, dict or list, a dataclass or a datetime (orjson refuses them, as told
    to). Then, or on a mere look-alike inside a string, json writes it. (A UUID or a plain Enum,
    which json refuses, orjson writes; nothing here hands it one.)
    """
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return _std_dumps(value)
    if b"0.0000" in out or _token_after(out, b"e-", _DIGITS) or _token_after(out, b"null", _NULL_BEFORE):
        return _std_dumps(value)
    return out


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_DIGITS = frozenset(b"0123456789")
_NULL_BEFORE = frozenset(b":,[")


def _token_after(out: bytes, token: bytes, before: frozenset[int]) -> bool:
    """Whether `token` occurs in `out` at the start or after a byte of `before` (a digit before
    `e-`: an exponent; `:`, `,` or `[` before `null`: a value; inside a string, a look-alike)."""
    i = out.find(token)
    while i >= 0:
        if i == 0 or out[i - 1] in before:
            return True
        i = out.find(token, i + 1)
    return False


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def response_json(binding: Binding, message: Message) -> bytes:
    if binding.response_body:
        field = message.DESCRIPTOR.fields_by_name[binding.response_body]
        return dumps(to_dict(message).get(field.name, _empty_json(field)))
    return dumps(to_dict(message))


def build_request(binding: Binding, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
                  body: bytes | None = None, content_type: str | None = None,
                  last_event_id: str | None = None) -> Message:
    """The request message for one HTTP request; a GatewayError (400) names what is wrong.

    A client-streaming binding's (`request_stream`) is its first message: the body is not in it
    but in the messages after it (uploads.py)."""
    request = binding.request_class()
    if binding.body and not binding.request_stream:
        _merge_body(binding, request, body or b"", content_type)
    bound = set(path_values)
    query_bound: set[str] = set()
    for name, raw in path_values.items():
        _set_path(request, name.split("."), raw, source=f"path variable '{name}'")
    if binding.body == "*":
        for name, _ in query:
            raise bad_request(f"unknown query parameter '{name}': this endpoint takes every field from "
                              "the JSON body", (name, "unknown query parameter"))
    else:
        for name, raw in query:
            path = _field_path(request.DESCRIPTOR, name)
            dotted = ".".join(f.name for f in path)
            if dotted in bound or (binding.body and path[0].name == binding.body):
                raise bad_request(f"query parameter '{name}' sets a field that the "
                                  f"{'path' if dotted in bound else 'body'} already sets",
                                  (name, "already set"))
            if dotted in query_bound and not path[-1].is_repeated:
                raise bad_request(f"query parameter '{name}' is given more than once but is not repeated",
                                  (name, "given more than once"))
            query_bound.add(dotted)
            _set_fields(request, path, raw, source=f"query parameter '{name}'")
    if last_event_id is not None:
        field = request.DESCRIPTOR.fields_by_name.get(RESUME_FIELD)
        if field is not None and RESUME_FIELD not in bound:
            request.ClearField(RESUME_FIELD)
            _set_fields(request, [field], last_event_id.strip(), source="header 'Last-Event-ID'")
    return request


def _merge_body(binding: Binding, request: Message, body: bytes, content_type: str | None) -> None:
    target_field = None if binding.body == "*" else request.DESCRIPTOR.fields_by_name[binding.body]
    target_type = (target_field.message_type if target_field else request.DESCRIPTOR)
    if target_type is not None and target_type.full_name == HTTP_BODY and (
            target_field is None or not target_field.is_repeated):
        # google.api.HttpBody takes the raw bytes and their content type, whatever they are.
        holder = getattr(request, target_field.name) if target_field else request
        holder.content_type = content_type or "application/octet-stream"
        holder.data = body
        return
    if not body.strip():
        return
    if content_type is not None and not _is_json(content_type):
        raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"unsupported Content-Type '{content_type}': send application/json",
                           http_status=415)
    try:
        # JSON is UTF-8 (RFC 8259); json.loads would guess UTF-16/32 from the first bytes.
        data = json.loads(body.decode("utf-8").removeprefix("\ufeff"), parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        raise bad_request(f"request body is not UTF-8: invalid byte at position {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"malformed JSON in request body: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno} (char {exc.pos})") from None
    except RecursionError:
        raise bad_request("request body nests arrays or objects too deeply") from None
    try:
        if target_field is None:
            if not isinstance(data, dict):
                raise bad_request(f"request body must be a JSON object, got {_json_kind(data)}")
        else:
            data = {target_field.name: data}
        check_body(request.DESCRIPTOR, data)
        _parse_into(data, request)
    except RecursionError:
        raise bad_request("request body nests messages too deeply") from None


def _not_json(constant: str) -> Any:
    raise bad_request(f"malformed JSON in request body: {constant} is not JSON (send the string \"{constant}\" "
                      "for a special double)")


def check_body(desc: Descriptor, data: dict[str, Any], path: str = "") -> None:
    """Refuse (400, naming the field) what proto3 JSON does not allow but json_format would take.

    Unknown fields, wrong JSON types for strings and booleans, null inside repeated fields and
    maps, duplicate oneof members and the well-known types' own forms are json_format's to
    refuse; so is everything in a field this does not know."""
    for key, value in list(data.items()):
        field = _find_field(desc, key) if isinstance(key, str) else None
        if field is None or value is None:  # proto3 JSON: null is the field's default value
            if value is None and field is not None and field.is_repeated and _is_value(field):
                # json_format would set null_value on the list itself (AttributeError): null is [].
                del data[key]
            continue
        where = f"{path}.{field.name}" if path else field.name
        if _is_map(field):
            if isinstance(value, dict):
                entry = field.message_type
                for k, v in value.items():
                    _check_map_key(entry.fields_by_name["key"], k, f"{where}[{k!r}]")
                    if v is not None:
                        _check_single(entry.fields_by_name["value"], v, f"{where}[{k!r}]")
        elif field.is_repeated:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is not None:
                        _check_single(field, item, f"{where}[{i}]")
        else:
            _check_single(field, value, where)


def _check_single(field: FieldDescriptor, value: Any, where: str) -> None:
    message = field.message_type
    if message is None:
        _check_scalar(field, value, where)
    elif message.full_name in WRAPPERS:
        _check_scalar(message.fields_by_name["value"], value, where)
    elif message.full_name.startswith("google.protobuf.") or message.full_name == HTTP_BODY:
        return  # a well-known type: json_format reads (and refuses) its own JSON form
    elif not isinstance(value, dict):
        raise _invalid(where, f"expected a JSON object ({message.name}), got {_json_kind(value)}", "not an object")
    else:
        check_body(message, value, where)


def _check_scalar(field: FieldDescriptor, value: Any, where: str) -> None:
    t = field.type
    if t in _INT_TYPES:
        ok = (isinstance(value, str) and _INT_RE.fullmatch(value) is not None) or (
            isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise _invalid(where, f"expected an integer (a JSON number or a string of digits), got {_shown(value)}",
                           "not an integer")
    elif t in _FLOAT_TYPES:
        if isinstance(value, str):
            if value not in FLOAT_SPECIALS and _FLOAT_RE.fullmatch(value) is None:
                raise _invalid(where, f"expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got {_shown(value)}",
                               "not a number")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(where, f"expected a number, got {_json_kind(value)}", "not a number")
        elif isinstance(value, int) and not _fits_double(value):
            raise _invalid(where, "number out of range for a double", "out of range")
    elif t == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        if isinstance(value, str):
            known = value in enum.values_by_name
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            known = math.isfinite(value) and value == int(value) and _enum_number(enum, int(value)) is not None
        else:
            raise _invalid(where, f"expected a {enum.name} name or number, got {_json_kind(value)}",
                           "not an enum value")
        if not known:
            names = ", ".join(v.name for v in enum.values)
            raise _invalid(where, f"{_shown(value)} is not a value of {enum.name} (one of {names}, or its number)",
                           "unknown enum value")
    elif t == FieldDescriptor.TYPE_BYTES and (not isinstance(value, str) or _BASE64_RE.fullmatch(value) is None):
        raise _invalid(where, "expected base64 (standard or URL-safe alphabet, padding optional)", "not base64")


def _enum_number(enum: EnumDescriptor, number: int) -> EnumValueDescriptor | None:
    # values_by_number takes the number modulo 2**32: 2**32 + 1 would be value 1.
    return enum.values_by_number.get(number) if -2**31 <= number < 2**31 else None


def _check_map_key(key_field: FieldDescriptor, key: str, where: str) -> None:
    t = key_field.type
    if t in _INT_TYPES and _INT_RE.fullmatch(key) is None:
        raise _invalid(where, "a map key must be an integer here", "not an integer key")
    if t == FieldDescriptor.TYPE_BOOL and key not in ("true", "false"):
        raise _invalid(where, "a map key must be true or false here", "not a boolean key")


def _fits_double(value: int) -> bool:
    try:
        float(value)
    except OverflowError:  # a JSON integer of ~310 digits or more
        return False
    return True


def _invalid(where: str, what: str, short: str) -> GatewayError:
    return bad_request(f"invalid request body: {where}: {what}", (where, short))


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_into(data: dict[str, Any], message: Message) -> None:
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        # json_format names the field ("... has no field named "foo" at ..."); its second line
        # lists every field in camelCase, which is noise in an error message.
        raise bad_request(f"invalid request body: {str(exc).splitlines()[0]}") from None


def _field_path(desc: Descriptor, name: str) -> list[FieldDescriptor]:
    path: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    parts = name.split(".")
    for i, part in enumerate(parts):
        if current is None or (path and path[-1].is_repeated):
            raise bad_request(f"unknown query parameter '{name}': '{'.'.join(parts[:i])}' has no fields",
                              (name, "unknown query parameter"))
        field = _find_field(current, part)
        if field is None:
            raise bad_request(f"unknown query parameter '{name}': {current.name} has no field '{part}'",
                              (name, "unknown query parameter"))
        path.append(field)
        current = field.message_type if field.message_type and not _is_leaf_message(field) else None
    if _is_map(path[-1]) or (path[-1].message_type is not None and not _is_leaf_message(path[-1])):
        raise bad_request(f"query parameter '{name}' names a message or map field; set its fields as "
                          f"'{name}.<field>' or send it in a JSON body", (name, "not a scalar field"))
    return path


def _find_field(desc: Descriptor, part: str) -> FieldDescriptor | None:
    field = desc.fields_by_name.get(part) or desc.fields_by_camelcase_name.get(part)
    if field is None:
        field = next((f for f in desc.fields if f.json_name == part), None)
    return field


def _set_path(request: Message, parts: list[str], raw: str, *, source: str) -> None:
    fields: list[FieldDescriptor] = []
    desc: Descriptor | None = request.DESCRIPTOR
    for part in parts:
        if desc is None:
            raise bad_request(f"{source}: '{part}' is not a field")
        field = desc.fields_by_name[part]
        fields.append(field)
        desc = field.message_type
    _set_fields(request, fields, raw, source=source)


def _set_fields(request: Message, path: list[FieldDescriptor], raw: str, *, source: str) -> None:
    parent = request
    for field in path[:-1]:
        _check_oneof(parent, field, source)
        parent = getattr(parent, field.name)
    leaf = path[-1]
    _check_oneof(parent, leaf, source)
    value = _convert(leaf, raw, source)
    try:
        if leaf.is_repeated:
            container = getattr(parent, leaf.name)
            if isinstance(value, Message):
                container.add().CopyFrom(value)
            else:
                container.append(value)
        elif isinstance(value, Message):
            getattr(parent, leaf.name).CopyFrom(value)
        else:
            setattr(parent, leaf.name, value)
    except (ValueError, TypeError) as exc:  # out of range for int32/uint32, ...
        raise bad_request(f"{source}: {exc}", (_dotted(path), str(exc))) from None


def _check_oneof(parent: Message, field: FieldDescriptor, source: str) -> None:
    oneof = field.containing_oneof
    if oneof is None:  # (a proto3 `optional` field's synthetic oneof has only itself: no conflict)
        return
    current = parent.WhichOneof(oneof.name)
    if current is not None and current != field.name:
        raise bad_request(f"{source}: '{field.name}' and '{current}' are alternatives (oneof "
                          f"'{oneof.name}'); set only one", (field.name, "oneof already set"))


def _convert(field: FieldDescriptor, raw: str, source: str) -> Any:
    t = field.type
    name = field.name
    if t == FieldDescriptor.TYPE_STRING:
        return raw
    if t == FieldDescriptor.TYPE_BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise bad_request(f"{source}: '{raw}' is not a boolean (use true or false)", (name, "not a boolean"))
    if t in _INT_TYPES:
        # Not int(): it also takes " 5", "+5", "1_000" and other scripts' digits.
        if _INT_RE.fullmatch(raw) is None:
            raise bad_request(f"{source}: '{raw}' is not an integer", (name, "not an integer"))
        return int(raw)
    if t in _FLOAT_TYPES:
        # Not float(): it also takes "inf", "nan", " 1" and "1_0".
        if raw not in FLOAT_SPECIALS and _FLOAT_RE.fullmatch(raw) is None:
            raise bad_request(f"{source}: '{raw}' is not a number (or NaN, Infinity, -Infinity)",
                              (name, "not a number"))
        return float(raw)
    if t == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        value = enum.values_by_name.get(raw)
        if value is None and _INT_RE.fullmatch(raw):
            value = _enum_number(enum, int(raw))
        if value is None:
            names = ", ".join(v.name for v in enum.values)
            raise bad_request(f"{source}: '{raw}' is not a value of {enum.name} (one of {names})",
                              (name, "unknown enum value"))
        return value.number
    if t == FieldDescriptor.TYPE_BYTES:
        try:
            if _BASE64_RE.fullmatch(raw) is None:
                raise ValueError(raw)
            # Standard or URL-safe alphabet, padding optional (as grpc-gateway accepts).
            padded = raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"{source}: not base64", (name, "not base64")) from None
    # A well-known message type with a scalar JSON form.
    message = field.message_type
    target = _message_class(field)()
    if message.full_name in WRAPPERS:
        # The wrapped value's own text, as for a plain field (json_format would read "1_000"
        # as a DoubleValue, and only "true" as a BoolValue).
        value = _convert(message.fields_by_name["value"], raw, source)
        try:
            target.value = value  # type: ignore[attr-defined]
        except (ValueError, TypeError) as exc:  # out of range for Int32Value, ...
            raise bad_request(f"{source}: {exc}", (name, str(exc))) from None
        return target
    try:
        parsed: Any = json.loads(raw) if message.full_name in _JSON_WKT else raw
        json_format.ParseDict(parsed, target)
    except (json.JSONDecodeError, json_format.ParseError) as exc:
        raise bad_request(f"{source}: {str(exc).splitlines()[0]}", (name, "invalid value")) from None
    return target


def _message_class(field: FieldDescriptor) -> type[Message]:
    return cast(type[Message], GetMessageClass(field.message_type))


def _is_value(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.protobuf.Value"


def _is_leaf_message(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name in (_SCALAR_WKT | _JSON_WKT)


def _is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return mt is not None and mt.GetOptions().map_entry


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _empty_json(field: FieldDescriptor) -> Any:
    if field.is_repeated:
        return {} if _is_map(field) else []
    return {} if field.message_type is not None else None


def _dotted(path: list[FieldDescriptor]) -> str:
    return ".".join(f.name for f in path)
