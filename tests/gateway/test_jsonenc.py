"""services.gateway.jsonenc: exactly json_format.MessageToDict (the gateway's two options), with
every map's (and Struct's) keys sorted.

Random messages of every hindsight.v1 type, of the test-only echo proto, of an "exotic" proto3
file built here (every scalar type, every well-known type, maps of every key kind, proto3
`optional`, a oneof whose members are not next to each other, field numbers out of declaration
order, a recursive type) and of proto2 descriptor.proto types (closed enums, custom defaults,
extensions). The JSON of both must be byte for byte the same, key order included. And the same
message is the same bytes whatever order its maps were filled in, in any process.
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Iterator
from typing import Any

import pytest
from google.api import field_behavior_pb2
from google.protobuf import (any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, field_mask_pb2, json_format,
                             struct_pb2, timestamp_pb2, wrappers_pb2)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hindsight.v1 import backtest_service_pb2, results_pb2, strategy_pb2

from services.gateway import jsonenc, transcoding

from .conftest import echo_service

FD = FieldDescriptor
SEEDS_PER_TYPE = 12


def reference(message: Message) -> Any:
    """MessageToDict's dict, with the keys of every map and Struct sorted (by the key's value)."""
    return sorted_maps(message.DESCRIPTOR, json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True))


_STRUCTS = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


def sorted_maps(desc: Descriptor, js: Any) -> Any:
    if desc.full_name in _STRUCTS:
        return all_keys_sorted(js)
    if not isinstance(js, dict) or desc.full_name.startswith("google.protobuf."):
        return js
    out = {}
    for key, value in js.items():
        field = desc.fields_by_name.get(key)
        if field is None or field.message_type is None:
            out[key] = value
        elif field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            order = {FD.CPPTYPE_STRING: str, FD.CPPTYPE_BOOL: lambda k: k == "true"}.get(key_field.cpp_type, int)
            out[key] = {k: value[k] if value_field.message_type is None else sorted_maps(value_field.message_type,
                                                                                      value[k])
                        for k in sorted(value, key=order)}
        elif field.is_repeated:
            out[key] = [sorted_maps(field.message_type, v) for v in value]
        else:
            out[key] = sorted_maps(field.message_type, value)
    return out


def all_keys_sorted(js: Any) -> Any:
    if isinstance(js, dict):
        return {k: all_keys_sorted(js[k]) for k in sorted(js)}
    if isinstance(js, list):
        return [all_keys_sorted(v) for v in js]
    return js


def assert_same(message: Message, *, fast: bool = True) -> None:
    expected = reference(message)
    got = jsonenc.message_to_dict(message)
    if fast:
        # The compiled converter itself, not json_format as its fallback.
        assert jsonenc.converter(message.DESCRIPTOR)(message) == got
    # The gateway's bytes (insertion order included), and the order-free comparison.
    assert transcoding.dumps(got) == transcoding.dumps(expected), type(message).__name__
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert transcoding.to_dict(message) == expected


# ---- an exotic proto3 file, built here ------------------------------------------------------------

EXOTIC_PACKAGE = "hindsight.jsonenctest"
_SCALARS = {
    "f_double": FD.TYPE_DOUBLE, "f_float": FD.TYPE_FLOAT, "f_int64": FD.TYPE_INT64, "f_uint64": FD.TYPE_UINT64,
    "f_int32": FD.TYPE_INT32, "f_fixed64": FD.TYPE_FIXED64, "f_fixed32": FD.TYPE_FIXED32, "f_bool": FD.TYPE_BOOL,
    "f_string": FD.TYPE_STRING, "f_bytes": FD.TYPE_BYTES, "f_uint32": FD.TYPE_UINT32, "f_sfixed32": FD.TYPE_SFIXED32,
    "f_sfixed64": FD.TYPE_SFIXED64, "f_sint32": FD.TYPE_SINT32, "f_sint64": FD.TYPE_SINT64,
}
_WKTS = {
    "timestamp": "google.protobuf.Timestamp", "duration": "google.protobuf.Duration",
    "struct": "google.protobuf.Struct", "value": "google.protobuf.Value", "list_value": "google.protobuf.ListValue",
    "any": "google.protobuf.Any", "field_mask": "google.protobuf.FieldMask",
    "w_double": "google.protobuf.DoubleValue", "w_float": "google.protobuf.FloatValue",
    "w_int64": "google.protobuf.Int64Value", "w_uint64": "google.protobuf.UInt64Value",
    "w_int32": "google.protobuf.Int32Value", "w_uint32": "google.protobuf.UInt32Value",
    "w_bool": "google.protobuf.BoolValue", "w_string": "google.protobuf.StringValue",
    "w_bytes": "google.protobuf.BytesValue",
}
_MAP_KEYS = {"string": FD.TYPE_STRING, "int32": FD.TYPE_INT32, "int64": FD.TYPE_INT64, "uint32": FD.TYPE_UINT32,
             "uint64": FD.TYPE_UINT64, "sint64": FD.TYPE_SINT64, "bool": FD.TYPE_BOOL, "fixed32": FD.TYPE_FIXED32}


def _exotic_file() -> descriptor_pb2.FileDescriptorProto:
    fp = descriptor_pb2.FileDescriptorProto(name="hindsight/jsonenctest/exotic.proto", package=EXOTIC_PACKAGE,
                                            syntax="proto3")
    fp.dependency.extend(["google/protobuf/timestamp.proto", "google/protobuf/duration.proto",
                          "google/protobuf/struct.proto", "google/protobuf/any.proto",
                          "google/protobuf/field_mask.proto", "google/protobuf/wrappers.proto"])
    enum = fp.enum_type.add(name="Shade")
    for number, name in enumerate(["SHADE_UNSPECIFIED", "SHADE_LIGHT", "SHADE_DARK"]):
        enum.value.add(name=name, number=number)
    msg = fp.message_type.add(name="Exotic")
    numbers = iter(range(1000, 1, -7))  # descending: declaration order is not field-number order

    def add(name: str, ftype: int, label: int = FD.LABEL_OPTIONAL, type_name: str = "",
            oneof: int | None = None, proto3_optional: bool = False) -> None:
        f = msg.field.add(name=name, number=next(numbers), type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
        if proto3_optional:
            f.proto3_optional = True

    for name, ftype in _SCALARS.items():
        add(name, ftype)
        add("r_" + name, ftype, FD.LABEL_REPEATED)
    add("shade", FD.TYPE_ENUM, type_name=f".{EXOTIC_PACKAGE}.Shade")
    add("shades", FD.TYPE_ENUM, FD.LABEL_REPEATED, type_name=f".{EXOTIC_PACKAGE}.Shade")
    add("null", FD.TYPE_ENUM, type_name=".google.protobuf.NullValue")
    for name, full in _WKTS.items():
        add(name, FD.TYPE_MESSAGE, type_name="." + full)
        add("r_" + name, FD.TYPE_MESSAGE, FD.LABEL_REPEATED, type_name="." + full)
    add("child", FD.TYPE_MESSAGE, type_name=f".{EXOTIC_PACKAGE}.Exotic")
    add("children", FD.TYPE_MESSAGE, FD.LABEL_REPEATED, type_name=f".{EXOTIC_PACKAGE}.Exotic")
    # A real oneof whose members are spread out (other fields between them, by number).
    msg.oneof_decl.add(name="pick")
    add("pick_string", FD.TYPE_STRING, oneof=0)
    add("between", FD.TYPE_INT32)
    add("pick_child", FD.TYPE_MESSAGE, type_name=f".{EXOTIC_PACKAGE}.Exotic", oneof=0)
    add("pick_double", FD.TYPE_DOUBLE, oneof=0)
    add("pick_shade", FD.TYPE_ENUM, type_name=f".{EXOTIC_PACKAGE}.Shade", oneof=0)
    add("pick_timestamp", FD.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp", oneof=0)
    # proto3 `optional` (a synthetic oneof each, declared after the real one).
    for name, ftype in [("o_int64", FD.TYPE_INT64), ("o_double", FD.TYPE_DOUBLE), ("o_string", FD.TYPE_STRING),
                        ("o_bool", FD.TYPE_BOOL)]:
        msg.oneof_decl.add(name="_" + name)
        add(name, ftype, oneof=len(msg.oneof_decl) - 1, proto3_optional=True)
    msg.oneof_decl.add(name="_o_shade")
    add("o_shade", FD.TYPE_ENUM, type_name=f".{EXOTIC_PACKAGE}.Shade", oneof=len(msg.oneof_decl) - 1,
        proto3_optional=True)
    # Maps: every key kind, scalar / enum / message / well-known values.
    values = {"double": (FD.TYPE_DOUBLE, ""), "int64": (FD.TYPE_INT64, ""), "bytes": (FD.TYPE_BYTES, ""),
              "shade": (FD.TYPE_ENUM, f".{EXOTIC_PACKAGE}.Shade"),
              "child": (FD.TYPE_MESSAGE, f".{EXOTIC_PACKAGE}.Exotic"),
              "timestamp": (FD.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
              "value": (FD.TYPE_MESSAGE, ".google.protobuf.Value"), "float": (FD.TYPE_FLOAT, ""),
              "string": (FD.TYPE_STRING, "")}
    for kname, ktype in _MAP_KEYS.items():
        for vname, (vtype, vtype_name) in values.items():
            if kname != "string" and vname not in ("string", "child", "double"):
                continue
            entry_name = f"M{kname.capitalize()}{vname.capitalize()}Entry"
            entry = msg.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=ktype, label=FD.LABEL_OPTIONAL)
            value = entry.field.add(name="value", number=2, type=vtype, label=FD.LABEL_OPTIONAL)
            if vtype_name:
                value.type_name = vtype_name
            add(f"m_{kname}_{vname}", FD.TYPE_MESSAGE, FD.LABEL_REPEATED,
                type_name=f".{EXOTIC_PACKAGE}.Exotic.{entry_name}")
    # A plain message type with a keyword-named field.
    small = fp.message_type.add(name="Small")
    small.field.add(name="from", number=2, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
    small.field.add(name="class", number=1, type=FD.TYPE_INT64, label=FD.LABEL_OPTIONAL)
    return fp


def exotic_descriptor() -> Descriptor:
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(f"{EXOTIC_PACKAGE}.Exotic")
    except KeyError:
        for module in (timestamp_pb2, duration_pb2, struct_pb2, any_pb2, field_mask_pb2, wrappers_pb2):
            assert module.DESCRIPTOR  # the dependencies are in the pool
        pool.Add(_exotic_file())
        return pool.FindMessageTypeByName(f"{EXOTIC_PACKAGE}.Exotic")


# ---- a random filler that walks the descriptor -------------------------------------------------------

_TEXT = (string.ascii_letters + string.digits + " _-./:\"\\\n\t\x00\x1f\x7f" + "éß€中文日本語😀🚀\u2028\u2029\ufeff")
_INT_RANGES = {
    FD.CPPTYPE_INT32: (-2**31, 2**31 - 1), FD.CPPTYPE_UINT32: (0, 2**32 - 1),
    FD.CPPTYPE_INT64: (-2**63, 2**63 - 1), FD.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_SPECIAL_DOUBLES = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1, -2.5, 1e16, 1e-7]
_SPECIAL_FLOATS = [0.0, -0.0, math.nan, math.inf, -math.inf, 0.1, 3.4028234663852886e38, 1.401298464324817e-45,
                   16777217.0, 0.3, -1.5]


def rand_text(rng: random.Random) -> str:
    return "".join(rng.choice(_TEXT) for _ in range(rng.choice([0, 0, 1, 3, 8, 20])))


def rand_scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        lo, hi = _INT_RANGES[cpp]
        return rng.choice([0, 0, 1, -1 if lo else 2, lo, hi, rng.randint(lo, hi), rng.randint(-1000, 1000) if lo else 7])
    if cpp == FD.CPPTYPE_DOUBLE:
        return rng.choice([*_SPECIAL_DOUBLES, rng.uniform(-1e6, 1e6), rng.random()])
    if cpp == FD.CPPTYPE_FLOAT:
        return rng.choice([*_SPECIAL_FLOATS, rng.uniform(-1e6, 1e6), rng.random()])
    if cpp == FD.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if cpp == FD.CPPTYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        if field.enum_type.is_closed or rng.random() < 0.7:
            return rng.choice(known)
        return rng.choice([-1, 99, 2**31 - 1, -2**31, max(known) + 1])
    if field.type == FD.TYPE_BYTES:
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 2, 3, 5, 17])))
    return rand_text(rng)


def rand_json(rng: random.Random, depth: int) -> Any:
    kinds = ["null", "number", "string", "bool"] + (["list", "struct"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "number":
        return rng.choice([0, -0.0, 1.5, 1e300, -7, rng.uniform(-1e9, 1e9)])
    if kind == "string":
        return rand_text(rng)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [rand_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rand_text(rng): rand_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def fill_wkt(message: Message, rng: random.Random, depth: int) -> bool:
    """Fill a well-known type with a valid random value; False when it is not one."""
    name = message.DESCRIPTOR.full_name
    nanos = rng.choice([0, 0, 1, 999_999_999, 123_000_000, 456_000, 789, rng.randint(0, 999_999_999)])
    if name == "google.protobuf.Timestamp":
        message.seconds = rng.choice([0, 1704067200, -1, -62135596800, 253402300799,
                                      rng.randint(-62135596800, 253402300799)])
        message.nanos = nanos
    elif name == "google.protobuf.Duration":
        seconds = rng.choice([0, 1, 315576000000, rng.randint(0, 10**6)])
        sign = rng.choice([1, -1])
        message.seconds, message.nanos = sign * seconds, sign * nanos
    elif name == "google.protobuf.FieldMask":
        message.paths.extend(rng.choice(["a", "foo_bar", "x.y_z", "n2"]) for _ in range(rng.randint(0, 3)))
    elif name == "google.protobuf.Struct":
        message.update({rand_text(rng): rand_json(rng, 1) for _ in range(rng.randint(0, 3))})
    elif name == "google.protobuf.Value":
        if rng.random() < 0.2:
            return True  # unset: null
        json_format.ParseDict(rand_json(rng, 0), message)
    elif name == "google.protobuf.ListValue":
        message.extend([rand_json(rng, 1) for _ in range(rng.randint(0, 3))])
    elif name == "google.protobuf.Any":
        if rng.random() < 0.25:
            return True  # empty Any: {}
        inner = rng.choice([backtest_service_pb2.PnlSummary, results_pb2.Candle, timestamp_pb2.Timestamp,
                            wrappers_pb2.Int64Value, struct_pb2.Struct])()
        fill(inner, rng, depth + 1)
        message.Pack(inner)
    elif message.DESCRIPTOR.file.name == "google/protobuf/wrappers.proto":
        if rng.random() < 0.8:
            message.value = rand_scalar(message.DESCRIPTOR.fields_by_name["value"], rng)
    else:
        return False
    return True


def fill(message: Message, rng: random.Random, depth: int = 0, max_depth: int = 3) -> Message:
    if fill_wkt(message, rng, depth):
        return message
    desc = message.DESCRIPTOR
    chosen = {}
    for oneof in desc.oneofs:
        members = list(oneof.fields)
        chosen[oneof] = rng.choice([*members, None])
    for field in desc.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof] is not field:
            continue
        if field.has_presence and oneof is None and rng.random() < 0.35:
            continue  # unset message / proto2 optional
        deep = depth >= max_depth
        if json_format._IsMapEntry(field):
            target = getattr(message, field.name)
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(0 if deep else rng.choice([0, 0, 1, 3])):
                key = rand_scalar(key_field, rng)
                if value_field.cpp_type == FD.CPPTYPE_MESSAGE:
                    fill(target[key], rng, depth + 1, max_depth)
                else:
                    target[key] = rand_scalar(value_field, rng)
        elif field.is_repeated:
            target = getattr(message, field.name)
            for _ in range(0 if deep else rng.choice([0, 0, 1, 3])):
                if field.cpp_type == FD.CPPTYPE_MESSAGE:
                    fill(target.add(), rng, depth + 1, max_depth)
                else:
                    target.append(rand_scalar(field, rng))
        elif field.cpp_type == FD.CPPTYPE_MESSAGE:
            if deep and oneof is None:
                continue
            sub = getattr(message, field.name)
            sub.SetInParent()
            if not deep:
                fill(sub, rng, depth + 1, max_depth)
        elif rng.random() < 0.3 and not field.has_presence:
            continue  # the zero value
        else:
            setattr(message, field.name, rand_scalar(field, rng))
    return message


# ---- the types -------------------------------------------------------------------------------------

def _all_types(descriptors: Iterator[Descriptor]) -> Iterator[Descriptor]:
    for desc in descriptors:
        if desc.GetOptions().map_entry:
            continue
        yield desc
        yield from _all_types(iter(desc.nested_types))


def hindsight_types() -> list[Descriptor]:
    return [d for module in (backtest_service_pb2, results_pb2, strategy_pb2)
            for d in _all_types(iter(module.DESCRIPTOR.message_types_by_name.values()))]


def echo_types() -> list[Descriptor]:
    file = echo_service().file
    return list(_all_types(iter(file.message_types_by_name.values())))


def exotic_types() -> list[Descriptor]:
    return list(_all_types(iter(exotic_descriptor().file.message_types_by_name.values())))


def _ids(descs: list[Descriptor]) -> list[str]:
    return [d.full_name for d in descs]


@pytest.mark.parametrize("full_name", _ids(hindsight_types()))
def test_every_hindsight_type(full_name: str) -> None:
    cls = GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))
    assert_same(cls())
    for seed in range(SEEDS_PER_TYPE):
        assert_same(fill(cls(), random.Random(f"{full_name}/{seed}")))


def test_echo_types() -> None:
    descs = echo_types()
    assert {"hindsight.gatewaytest.EchoRequest", "hindsight.gatewaytest.Inner"} <= set(_ids(descs))
    for desc in descs:
        cls = GetMessageClass(desc)
        assert_same(cls())
        for seed in range(40):
            assert_same(fill(cls(), random.Random(f"{desc.full_name}/{seed}")))


def test_exotic_types() -> None:
    for desc in exotic_types():
        cls = GetMessageClass(desc)
        assert_same(cls())
        for seed in range(200):
            # Depth 1 or 2: the type is recursive many times over (children, maps of children).
            assert_same(fill(cls(), random.Random(f"{desc.full_name}/{seed}"), max_depth=1 + seed % 2))


def test_well_known_types_at_the_top() -> None:
    """A Timestamp, wrapper or Struct as the whole message: a string, number, dict or list."""
    for cls in (timestamp_pb2.Timestamp, duration_pb2.Duration, field_mask_pb2.FieldMask, struct_pb2.Struct,
                struct_pb2.Value, struct_pb2.ListValue, any_pb2.Any, wrappers_pb2.DoubleValue,
                wrappers_pb2.FloatValue, wrappers_pb2.Int64Value, wrappers_pb2.UInt64Value,
                wrappers_pb2.Int32Value, wrappers_pb2.UInt32Value, wrappers_pb2.BoolValue,
                wrappers_pb2.StringValue, wrappers_pb2.BytesValue):
        assert_same(cls())
        for seed in range(60):
            assert_same(fill(cls(), random.Random(f"{cls.DESCRIPTOR.full_name}/{seed}")))


def test_timestamps_as_json_format_writes_them() -> None:
    ts = timestamp_pb2.Timestamp
    cases = {(1704067200, 0): "2024-01-01T00:00:00Z", (1704067200, 5_000_000): "2024-01-01T00:00:00.005Z",
             (1704067200, 5_000): "2024-01-01T00:00:00.000005Z", (1704067200, 5): "2024-01-01T00:00:00.000000005Z",
             (-62135596800, 0): "0001-01-01T00:00:00Z", (253402300799, 999_999_999): "9999-12-31T23:59:59.999999999Z",
             (-1, 999_000_000): "1969-12-31T23:59:59.999Z"}
    for (seconds, nanos), text in cases.items():
        message = ts(seconds=seconds, nanos=nanos)
        assert jsonenc.message_to_dict(message) == text == reference(message)
        holder = backtest_service_pb2.BacktestEvent(emitted_at=message)
        assert jsonenc.message_to_dict(holder)["emitted_at"] == text
    for seconds in range(1704067200, 1704067200 + 5000, 7):  # past the per-second cache's size
        assert_same(backtest_service_pb2.BacktestEvent(emitted_at=ts(seconds=seconds, nanos=seconds % 3 * 1000)))


def _raises(message: Message) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as expected:
        json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    with pytest.raises(expected.type) as got:
        jsonenc.message_to_dict(message)
    assert str(got.value) == str(expected.value)
    return expected.type, str(expected.value)


def test_errors_are_json_formats() -> None:
    """What MessageToDict refuses, message_to_dict refuses with the same exception."""
    exotic = GetMessageClass(exotic_descriptor())
    _raises(exotic(timestamp=timestamp_pb2.Timestamp(seconds=253402300800)))
    _raises(exotic(r_duration=[duration_pb2.Duration(seconds=1, nanos=-5)]))
    _raises(exotic(value=struct_pb2.Value(number_value=math.nan)))
    _raises(struct_pb2.Value(number_value=math.inf))
    _raises(timestamp_pb2.Timestamp(nanos=-1))
    bad = exotic()
    bad.m_string_child["k"].r_timestamp.add(seconds=-62135596801)
    _raises(bad)


def test_proto2_and_extensions() -> None:
    """Presence for every singular field, closed enums, custom defaults, and extension fields."""
    for cls in (descriptor_pb2.FileDescriptorProto, descriptor_pb2.FieldDescriptorProto,
                descriptor_pb2.FieldOptions, descriptor_pb2.UninterpretedOption):
        assert_same(cls())
        for seed in range(40):
            assert_same(fill(cls(), random.Random(f"{cls.DESCRIPTOR.full_name}/{seed}")))
    options = descriptor_pb2.FieldOptions(deprecated=True)
    options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    assert "[google.api.field_behavior]" in reference(options)
    assert_same(options, fast=False)  # the extension: json_format's own rendering
    assert_same(descriptor_pb2.FieldDescriptorProto(options=options, name="x"), fast=False)


def test_keys_in_json_formats_order() -> None:
    """Set fields by number first, then the unset ones in declaration order (not sorted keys)."""
    event = backtest_service_pb2.BacktestEvent(backtest_id="b")
    event.tick_update.tick = 3
    got = jsonenc.message_to_dict(event)
    assert list(got) == list(reference(event)) == ["backtest_id", "tick_update", "event_id"]
    assert list(got["tick_update"]) == list(reference(event)["tick_update"])


def test_gateway_events() -> None:
    from .conftest import make_events
    for event in make_events("bt-1", days=3):
        assert_same(event)


def test_converters_are_cached_per_type() -> None:
    message = backtest_service_pb2.BacktestEvent()
    jsonenc.message_to_dict(message)
    first = jsonenc.converter(message.DESCRIPTOR)
    assert jsonenc.converter(message.DESCRIPTOR) is first
    assert jsonenc.converter(message.tick_update.DESCRIPTOR) is not None


# ---- map keys: the same message, the same bytes ---------------------------------------------------

_VARIABLES = ["rsi", "close", "sma_fast", "sma_slow", "stop_loss", "atr", "vwap", "Z", "a", "ä", "10", "9", ""]


def _day_detail(order: list[str]) -> results_pb2.DayDetail:
    """A DayDetail with node events keyed by flow id, each with `variables`, filled in `order`."""
    detail = results_pb2.DayDetail(date="2024-01-02")
    for name in order:
        event = detail.events_history[f"ex-{name}"]
        event.node_id = f"node-{len(name) % 3}"
        for var in order:
            event.variables[var] = float(sum(map(ord, var + name)))
    return detail


def test_map_keys_are_sorted_whatever_the_insertion_order() -> None:
    forward, backward = _day_detail(_VARIABLES), _day_detail(_VARIABLES[::-1])
    # The messages are equal; their maps' iteration order need not be.
    assert forward == backward
    a = transcoding.dumps(jsonenc.message_to_dict(forward))
    b = transcoding.dumps(jsonenc.message_to_dict(backward))
    assert a == b
    got = jsonenc.message_to_dict(forward)
    assert list(got["events_history"]) == sorted(f"ex-{n}" for n in _VARIABLES)
    for event in got["events_history"].values():
        assert list(event["variables"]) == sorted(_VARIABLES)  # code point order: "" < "10" < "9" < "Z" < "a"
    # The same through an event on the stream, and through json_format's fallback path.
    event = backtest_service_pb2.BacktestEvent(event_id=1)
    event.node_event.CopyFrom(forward.events_history["ex-rsi"])
    other = backtest_service_pb2.BacktestEvent(event_id=1)
    other.node_event.CopyFrom(backward.events_history["ex-rsi"])
    assert transcoding.dumps(transcoding.to_dict(event)) == transcoding.dumps(transcoding.to_dict(other))
    assert jsonenc._sort_maps(forward.DESCRIPTOR, json_format.MessageToDict(
        backward, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)) == got
    assert list(jsonenc._sort_maps(forward.DESCRIPTOR, reference(backward))["events_history"]) == \
        list(got["events_history"])


def test_map_keys_of_every_kind_are_sorted_by_value() -> None:
    exotic = GetMessageClass(exotic_descriptor())
    message = exotic()
    for k in (10, -3, 2, 100, 0):
        message.m_int64_string[k] = str(k)
        message.m_uint32_double[abs(k)] = float(k)
    for k in (True, False):
        message.m_bool_child[k].f_int32 = int(k)
    message.struct.update({"b": 1, "a": {"d": 2, "c": [{"f": 1, "e": 2}]}})
    got = jsonenc.message_to_dict(message)
    assert list(got["m_int64_string"]) == ["-3", "0", "2", "10", "100"]
    assert list(got["m_uint32_double"]) == ["0", "2", "3", "10", "100"]
    assert list(got["m_bool_child"]) == ["false", "true"]
    assert transcoding.dumps(got["struct"]) == b'{"a":{"c":[{"e":2.0,"f":1.0}],"d":2.0},"b":1.0}'
    assert_same(message)


_IN_A_PROCESS = r"""
import sys
from hindsight.v1 import results_pb2
from services.gateway import transcoding
detail = results_pb2.DayDetail(date="2024-01-02")
names = sys.argv[1:]
for name in names:
    event = detail.events_history["ex-" + name]
    event.node_id = "node"
    for var in names:
        event.variables[var] = float(sum(map(ord, var)))
sys.stdout.write(repr(list(detail.events_history)) + "\n")
sys.stdout.buffer.write(transcoding.dumps(transcoding.to_dict(detail)))
"""


def test_the_same_bytes_from_any_process() -> None:
    """Gateway processes differ in their hash seeds (Python's, and upb's, which follows the address
    space layout): the bytes of one message must not."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    names = [f"var_{i}" for i in range(40)]
    outputs, orders = [], []
    for seed, order in (("1", names), ("2", names), ("3", names[::-1])):
        done = subprocess.run([sys.executable, "-c", _IN_A_PROCESS, *order], cwd=repo,
                              env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, check=True, timeout=120)
        iteration, _, body = done.stdout.partition(b"\n")
        orders.append(iteration)
        outputs.append(body)
    assert outputs[0] == outputs[1] == outputs[2]
    assert list(json.loads(outputs[0])["events_history"]) == sorted(f"ex-{n}" for n in names)
    # What this process writes for the same message, too.
    detail = results_pb2.DayDetail(date="2024-01-02")
    for name in names:
        event = detail.events_history["ex-" + name]
        event.node_id = "node"
        for var in names:
            event.variables[var] = float(sum(map(ord, var)))
    assert transcoding.dumps(transcoding.to_dict(detail)) == outputs[0]
