"""A fast `json_format.MessageToDict` for the gateway's JSON, with map keys in a stable order.

`message_to_dict(m)` returns what
`MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)`
returns, key order included (so `json.dumps` of both is byte for byte the same), except that the
keys of every map field (and of every google.protobuf.Struct) come sorted: by the key's value
(strings by code point, integers numerically, false before true). json_format writes them in
the map's iteration order, which for the upb runtime depends on insertion order and on a hash
seed that differs between processes: the same event would be different bytes from two gateway
processes. (Inside a google.protobuf.Any, json_format's own rendering, order included, stays.)
It does so at a fraction of the cost: each message Descriptor gets one converter function, built on first use and cached,
that walks `ListFields()` (the set fields, in the order json_format sees them) with a per-field
handler chosen once, then appends the fields without presence that were not set, in declaration
order, from precomputed default values (json_format's own rendering of `field.default_value`).

Correctness first: every value that is not a plain fast case is rendered by json_format's own
printer (enum values it does not know, Any, Struct, Value, ListValue; Timestamp, Duration and
FieldMask through their `ToJsonString`, as json_format does), and if a converter raises for any
reason (an extension field, an invalid Timestamp, NaN in a Value, a closed enum's unknown
number...) the whole message is rendered again by `MessageToDict`, which returns or raises
exactly what it always did.
"""

from __future__ import annotations

import base64
import datetime
import keyword
import math
import operator
import threading
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

__all__ = ["message_to_dict"]

Converter = Callable[[Any], Any]

# The printer MessageToDict builds for these options; used at build time for default values and
# enum names, and at run time for the rare values handed to it.
_PRINTER = json_format._Printer(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

_CACHE: dict[Descriptor, Converter] = {}
_LOCK = threading.RLock()

_FD = FieldDescriptor
_INT64 = frozenset({_FD.CPPTYPE_INT64, _FD.CPPTYPE_UINT64})
_INT32 = frozenset({_FD.CPPTYPE_INT32, _FD.CPPTYPE_UINT32})
# json_format renders these message types with a printer method of their own.
_WKT_METHODS: dict[str, str] = {name: methods[0] for name, methods in json_format._WKTJSONMETHODS.items()}
_TO_JSON_STRING = "_GenericMessageToJsonObject"  # Timestamp, Duration, FieldMask: m.ToJsonString()
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"

# Default-value kinds for the fields without presence.
_CONST, _LIST, _DICT = 0, 1, 2


def message_to_dict(message: Message) -> Any:
    """`MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)`."""
    try:
        convert = _CACHE.get(message.DESCRIPTOR)
        if convert is None:
            convert = converter(message.DESCRIPTOR)
        return convert(message)
    except Exception:
        # Whatever it is, json_format decides: the same result (map keys sorted) or the same
        # exception as ever.
        return _sort_maps(message.DESCRIPTOR, json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


def converter(desc: Descriptor) -> Converter:
    """The cached converter for messages of `desc` (built, with those it needs, on first use)."""
    convert = _CACHE.get(desc)
    if convert is not None:
        return convert
    with _LOCK:
        convert = _CACHE.get(desc)
        if convert is None:
            building: dict[Descriptor, Converter] = {}
            convert = _build(desc, building)
            # Published only once complete, so another thread never sees a half-built table.
            _CACHE.update(building)
    return convert


# ---- scalar values ------------------------------------------------------------------------------

def _special_float(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _double(value: float) -> Any:
    # Finite values are the only ones with value - value == 0 (inf - inf and NaN give NaN).
    return value if value - value == 0 else _special_float(value)


def _float(value: float) -> Any:
    if value - value == 0:
        return type_checkers.ToShortestFloat(value)
    return _special_float(value)


# google.protobuf.Timestamp: Timestamp.ToJsonString's result, its date part cached per second.
_TIMESTAMP_SECONDS_MIN = -62135596800
_TIMESTAMP_SECONDS_MAX = 253402300799
_EPOCH = datetime.datetime(1970, 1, 1)
_seconds_nanos = operator.attrgetter("seconds", "nanos")
_iso_seconds: dict[int, str] = {}


def _timestamp(message: Any) -> str:
    seconds, nanos = _seconds_nanos(message)
    if not (_TIMESTAMP_SECONDS_MIN <= seconds <= _TIMESTAMP_SECONDS_MAX and 0 <= nanos < 1_000_000_000):
        return message.ToJsonString()  # raises its ValueError
    result = _iso_seconds.get(seconds)
    if result is None:
        # As Timestamp.ToJsonString computes it.
        in_day = seconds % 86400
        result = (_EPOCH + datetime.timedelta((seconds - in_day) // 86400, in_day)).isoformat()
        if len(_iso_seconds) >= 4096:
            _iso_seconds.clear()
        _iso_seconds[seconds] = result
    if not nanos:
        return result + "Z"
    if (nanos % 1e6) == 0:
        return result + ".%03dZ" % (nanos / 1e6)
    if (nanos % 1e3) == 0:
        return result + ".%06dZ" % (nanos / 1e3)
    return result + ".%09dZ" % nanos


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _enum(field: FieldDescriptor) -> Converter:
    enum = field.enum_type
    if enum.full_name == "google.protobuf.NullValue":
        return lambda value: None
    names = {number: _PRINTER._FieldToJsonObject(field, number) for number in enum.values_by_number}
    to_json = _PRINTER._FieldToJsonObject
    get = names.get

    def convert(value: int) -> Any:
        name = get(value)
        # An unknown number: the int for an open enum, SerializeToJsonError for a closed one.
        return to_json(field, value) if name is None else name

    return convert


def _value(field: FieldDescriptor, building: dict[Descriptor, Converter]) -> Converter | None:
    """Converter for one value of `field` (None: the value is its own JSON)."""
    cpp = field.cpp_type
    if cpp == _FD.CPPTYPE_MESSAGE:
        return _build(field.message_type, building)
    if cpp == _FD.CPPTYPE_ENUM:
        return _enum(field)
    if cpp == _FD.CPPTYPE_STRING:
        return _bytes if field.type == _FD.TYPE_BYTES else None
    if cpp == _FD.CPPTYPE_BOOL or cpp in _INT32:
        return None
    if cpp in _INT64:
        return str
    if cpp == _FD.CPPTYPE_DOUBLE:
        return _double
    if cpp == _FD.CPPTYPE_FLOAT:
        return _float
    raise TypeError(f"unexpected cpp_type {cpp} of {field.full_name}")  # pragma: no cover


def _repeated(field: FieldDescriptor, building: dict[Descriptor, Converter]) -> Converter:
    one = _value(field, building)
    if one is None:
        return list
    if one is str:
        return lambda values: list(map(str, values))
    if one is _double:
        return lambda values: [v if v - v == 0 else _special_float(v) for v in values]
    return lambda values: [one(v) for v in values]


_first = operator.itemgetter(0)


def _map(field: FieldDescriptor, building: dict[Descriptor, Converter]) -> Converter:
    """A map field's converter: its entries sorted by key (keys are unique: only they are compared)."""
    entry = field.message_type
    one = _value(entry.fields_by_name["value"], building)
    key_type = entry.fields_by_name["key"].cpp_type
    if key_type == _FD.CPPTYPE_STRING:
        if one is None:
            return lambda values: dict(sorted(values.items(), key=_first))
        if one is _double:
            return lambda values: {k: v if v - v == 0 else _special_float(v)
                                   for k, v in sorted(values.items(), key=_first)}
        return lambda values: {k: one(v) for k, v in sorted(values.items(), key=_first)}

    def key(k: Any) -> str:
        if isinstance(k, bool):
            return "true" if k else "false"
        return str(k)

    if one is None:
        return lambda values: {key(k): v for k, v in sorted(values.items(), key=_first)}
    return lambda values: {key(k): one(v) for k, v in sorted(values.items(), key=_first)}


# JSON objects of these types are maps too (Struct: map<string, Value>): their keys, at every
# depth, come sorted.
_STRUCT_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})


def _sorted_json(value: Any) -> Any:
    """Plain JSON with every object's keys sorted."""
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


def _json_key_order(field: FieldDescriptor) -> Callable[[tuple[str, Any]], Any]:
    """Sort key of a map entry as json_format writes it (its key as text): the key's value."""
    cpp = field.cpp_type
    if cpp == _FD.CPPTYPE_STRING:
        return _first
    if cpp == _FD.CPPTYPE_BOOL:
        return lambda item: item[0] == "true"
    return lambda item: int(item[0])


def _sort_maps(desc: Descriptor, js: Any) -> Any:
    """json_format's dict for a message of `desc`, its maps' (and Structs') keys sorted in place."""
    if not isinstance(js, dict):
        return js  # a well-known type written as a string, number or list
    if desc.full_name in _STRUCT_TYPES:
        return _sorted_json(js)
    if desc.full_name in _WKT_METHODS or desc.file.name == _WRAPPERS_FILE:
        return js  # Any: json_format's rendering of the packed message
    for field in desc.fields:
        value = js.get(field.name)
        if value is None or field.message_type is None:
            continue
        if json_format._IsMapEntry(field):
            entry = field.message_type
            items = sorted(value.items(), key=_json_key_order(entry.fields_by_name["key"]))
            value_type = entry.fields_by_name["value"].message_type
            js[field.name] = {k: v if value_type is None else _sort_maps(value_type, v) for k, v in items}
        elif field.is_repeated:
            js[field.name] = [_sort_maps(field.message_type, v) for v in value]
        else:
            js[field.name] = _sort_maps(field.message_type, value)
    return js


# ---- messages -----------------------------------------------------------------------------------

def _build(desc: Descriptor, building: dict[Descriptor, Converter]) -> Converter:
    done = _CACHE.get(desc) or building.get(desc)
    if done is not None:
        return done
    full_name = desc.full_name
    convert: Converter
    if desc.file.name == _WRAPPERS_FILE:
        one = _value(desc.fields_by_name["value"], building)
        if one is None:
            convert = operator.attrgetter("value")
        else:
            convert = lambda message: one(message.value)  # noqa: E731
    elif full_name == "google.protobuf.Timestamp":
        convert = _timestamp
    elif full_name in _STRUCT_TYPES:
        render = getattr(_PRINTER, _WKT_METHODS[full_name])
        convert = lambda message: _sorted_json(render(message))  # noqa: E731
    elif full_name in _WKT_METHODS:
        method = _WKT_METHODS[full_name]
        convert = operator.methodcaller("ToJsonString") if method == _TO_JSON_STRING else getattr(_PRINTER, method)
    else:
        # A stand-in while the fields are built, for the types that contain this one (recursion).
        real: list[Converter] = []
        building[desc] = lambda message: real[0](message)
        convert = (_compile(desc, building) if not desc.extension_ranges
                   else _list_fields_converter(desc, building))
        real.append(convert)
    building[desc] = convert
    return convert


def _field_converter(field: FieldDescriptor, building: dict[Descriptor, Converter]) -> Converter | None:
    if json_format._IsMapEntry(field):
        return _map(field, building)
    if field.is_repeated:
        return _repeated(field, building)
    return _value(field, building)


def _default(field: FieldDescriptor) -> tuple[Any, int]:
    if json_format._IsMapEntry(field):
        return None, _DICT
    if field.is_repeated:
        return None, _LIST
    return _PRINTER._FieldToJsonObject(field, field.default_value), _CONST


def _compile(desc: Descriptor, building: dict[Descriptor, Converter]) -> Converter:
    """Python source for this one message type, compiled: what ListFields() would list, in its order
    (field number), read with one attrgetter for the fields without presence and HasField /
    WhichOneof for the others; then the unset fields without presence in declaration order.

    A field without presence is listed when its value is not zero: a non-empty string, bytes,
    list or map, a non-zero number, or a float whose bits are not all zero (-0.0 and NaN count).
    """
    ns: dict[str, Any] = {"_sf": _special_float, "_copysign": math.copysign}
    by_number = sorted(desc.fields, key=lambda f: f.number)
    index = {field: i for i, field in enumerate(by_number)}
    plain = [f for f in by_number if not f.has_presence]
    head: list[str] = []
    body: list[str] = ["    js = {}"]
    tail: list[str] = []

    def is_set(field: FieldDescriptor, var: str) -> str:
        if (not field.is_repeated and field.cpp_type in (_FD.CPPTYPE_DOUBLE, _FD.CPPTYPE_FLOAT)):
            return f"({var} or _copysign(1.0, {var}) < 0.0)"
        return var

    def assign(field: FieldDescriptor, var: str, indent: str) -> str:
        i = index[field]
        one = _field_converter(field, building)
        key = repr(field.name)
        if one is None:
            value = var
        elif one is str:
            value = f"str({var})"
        elif one is _double:
            value = f"({var} if {var} - {var} == 0 else _sf({var}))"
        else:
            ns[f"c{i}"] = one
            value = f"c{i}({var})"
        return f"{indent}js[{key}] = {value}"

    if len(plain) == 1:
        head.append(f"    v{index[plain[0]]} = _get(m)")
    elif plain:
        head.append(f"    {', '.join(f'v{index[f]}' for f in plain)}, = _get(m)")
    if plain:
        ns["_get"] = operator.attrgetter(*(f.name for f in plain))

    # Oneofs (real or the synthetic one of a proto3 `optional`) with more than one member: one
    # WhichOneof each.
    oneofs: dict[Any, str] = {}
    for field in by_number:
        oneof = field.containing_oneof
        if oneof is not None and len(oneof.fields) > 1 and oneof not in oneofs:
            oneofs[oneof] = f"w{len(oneofs)}"
            head.append(f"    {oneofs[oneof]} = m.WhichOneof({oneof.name!r})")
    done_oneofs: set[Any] = set()
    for pos, field in enumerate(by_number):
        i = index[field]
        if not field.has_presence:
            body.append(f"    if {is_set(field, f'v{i}')}:")
            body.append(assign(field, f"v{i}", "        "))
            continue
        oneof = field.containing_oneof
        if oneof in oneofs:
            if oneof in done_oneofs:
                continue
            members = [index[f] for f in oneof.fields]
            contiguous = sorted(members) == list(range(pos, pos + len(members)))
            if contiguous:
                # The set member (if any) sits here in field-number order: one dispatch on its name.
                w = oneofs[oneof]
                done_oneofs.add(oneof)
                ns[f"o{i}"] = {f.name: _field_converter(f, building) or _identity for f in oneof.fields}
                body.append(f"    if {w} is not None:")
                body.append(f"        js[{w}] = o{i}[{w}](getattr(m, {w}))")
                continue
            body.append(f"    if {oneofs[oneof]} == {field.name!r}:")
        else:
            body.append(f"    if m.HasField({field.name!r}):")
        body.append(f"        v{i} = m.{field.name}" if field.name.isidentifier() and not keyword.iskeyword(field.name)
                    else f"        v{i} = getattr(m, {field.name!r})")
        body.append(assign(field, f"v{i}", "        "))

    for field in desc.fields:  # declaration order
        if field.has_presence:
            continue
        i = index[field]
        default, kind = _default(field)
        ns[f"d{i}"] = default
        value = f"d{i}" if kind == _CONST else "[]" if kind == _LIST else "{}"
        tail.append(f"    if not {is_set(field, f'v{i}')}:")
        tail.append(f"        js[{field.name!r}] = {value}")

    source = "\n".join(["def convert(m):", *head, *body, *tail, "    return js", ""])
    exec(compile(source, f"<jsonenc {desc.full_name}>", "exec"), ns)  # noqa: S102
    convert: Converter = ns["convert"]
    convert.__doc__ = source
    return convert


def _identity(value: Any) -> Any:
    return value


def _list_fields_converter(desc: Descriptor, building: dict[Descriptor, Converter]) -> Converter:
    """The general form (any message, extensions included): ListFields(), then the defaults."""
    table: dict[FieldDescriptor, tuple[str, Converter | None]] = {}
    defaults: list[tuple[str, Any, int]] = []

    def convert(message: Message) -> Any:
        js: dict[str, Any] = {}
        for field, value in message.ListFields():
            name, one = table[field]  # KeyError (an extension): json_format takes over
            js[name] = value if one is None else one(value)
        for name, default, kind in defaults:
            if name not in js:
                js[name] = default if kind == _CONST else [] if kind == _LIST else {}
        return js

    for field in desc.fields:
        table[field] = (field.name, _field_converter(field, building))
        if not field.has_presence:
            defaults.append((field.name, *_default(field)))
    return convert
