"""Analytics as protobuf bytes, the trade points built column by column.

A ten-year one-minute run has ~50,000 closed trades: one `TradePoint` message each costs
~2 us to build and the whole ~6.5 MB to serialize, more than every other figure together.
`trade_points_bytes` writes the repeated field's wire bytes straight from the table's columns
with NumPy: each field of each row is a fixed-width slot of a byte matrix (tag, varint length
or value, payload) with a mask of the bytes it uses (proto3: a field at its default is not
written), and the message is the matrix's masked bytes in row order. The bytes equal
`SerializeToString()` of the same messages (tests/engine/analytics check it), so the answer is
`head + trade points + tail`: a repeated field's elements may be written in pieces, and here
they are in field-number order anyway.
"""

from __future__ import annotations

import numpy as np

from hindsight.v1 import analytics_pb2 as apb

from .load import SIDE_NAMES, RunTable

# Analytics.trades: field 7, wire type 2 (length-delimited). TradePoint's fields in order:
# 1 trade_id, 2 entry_time, 3 exit_time (strings), 4 duration_minutes, 5 pnl, 6 return_pct
# (doubles), 7 entry_hour, 8 entry_minute_of_day (varints), 9 side, 10 exit_reason,
# 11 node_id (strings).
_TRADES_TAG = 7 << 3 | 2
# Analytics.cached (field 13, varint) = true: appended to a cached answer (the last value of a
# scalar field wins when parsing).
CACHED_TRUE = bytes([13 << 3 | 0, 1])


def _varint_width(v: np.ndarray) -> np.ndarray:
    """Bytes of each non-negative value's varint."""
    w = np.ones(len(v), np.int64)
    for k in range(1, 10):
        w += v >= (1 << (7 * k))
    return w


def _write_varint(out: np.ndarray, used: np.ndarray, v: np.ndarray) -> None:
    """Varints of non-negative ints into (n x width) views of the byte matrix and its mask
    (every slot's mask is set: callers clear the slots of values left out)."""
    width = out.shape[1]
    v = np.asarray(v, np.int64)
    if len(v) and int(v.max()) >= 1 << (7 * width):
        raise ValueError(f"a value needs more than {width} varint bytes")
    if width == 1 or not len(v) or int(v.max()) < 0x80:  # the usual case: one byte
        out[:, 0] = v
        used[:, 0] = True
        return
    v = v.copy()
    used[:, 0] = True
    for k in range(width):
        more = v >= 0x80
        out[:, k] = (v & 0x7F) | (more << 7)
        if k + 1 < width:
            used[:, k + 1] = more
        v >>= 7


def _string_width(values: np.ndarray) -> int:
    """Slots of a string field: its tag, its length's varint (1 byte up to 127), its bytes."""
    size = max(1, values.dtype.itemsize)
    return 1 + int(_varint_width(np.array([size]))[0]) + size


class _Matrix:
    """`width` byte slots of n rows, slot-major (a slot of every row is contiguous: each field is
    written in a few vectorized passes), with the mask of the slots used; `size` counts each
    row's bytes. `bytes()` is the used slots row after row."""

    def __init__(self, n: int, width: int, first: int = 0):
        self.n = n
        self.data = np.zeros((width, n), np.uint8)
        self.used = np.zeros((width, n), bool)
        self.col = first
        self.size = np.zeros(n, np.int64)

    def _take(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        a, self.col = self.col, self.col + width
        return self.data[a:self.col], self.used[a:self.col]

    def string(self, field: int, values: np.ndarray) -> None:
        """A string field from a NumPy bytes array (empty values are left out)."""
        values = np.ascontiguousarray(values)
        width = values.dtype.itemsize
        head = _string_width(values) - width
        lengths = np.char.str_len(values).astype(np.int64)
        present = lengths > 0
        data, used = self._take(head + width)
        data[0] = field << 3 | 2
        _write_varint(data[1:head].T, used[1:head].T, lengths)
        used[:head] &= present
        used[0] = present
        data[head:] = values.view(np.uint8).reshape(self.n, width).T
        np.less(np.arange(width)[:, None], lengths, out=used[head:])
        self.size += np.where(present, head + lengths, 0) if head == 2 else \
            np.where(present, 1 + _varint_width(lengths) + lengths, 0)

    def double(self, field: int, values: np.ndarray) -> None:
        v = np.ascontiguousarray(values, "<f8")
        present = v.view(np.uint64) != 0  # as protobuf: any bits but +0.0's (-0.0 and NaN are written)
        data, used = self._take(9)
        data[0] = field << 3 | 1
        data[1:] = v.view(np.uint8).reshape(self.n, 8).T
        used[:] = present
        self.size += 9 * present

    def uint(self, field: int, values: np.ndarray, width: int) -> None:
        v = np.asarray(values, np.int64)
        if len(v) and int(v.min()) < 0:
            raise ValueError("negative values are not encoded here")
        present = v != 0
        data, used = self._take(1 + width)
        data[0] = field << 3 | 0
        _write_varint(data[1:].T, used[1:].T, v)
        used[0] = True
        used &= present
        self.size += np.where(present, 1 + _varint_width(v), 0)

    def category(self, field: int, codes: np.ndarray, names: np.ndarray) -> None:
        """A string field holding one of a few values: each value's bytes built once."""
        names = _names(names)
        one = _Matrix(len(names), _string_width(names))
        one.string(field, names)
        codes = np.asarray(codes, np.int64)
        data, used = self._take(one.data.shape[0])
        np.take(one.data, codes, axis=1, out=data)
        np.take(one.used, codes, axis=1, out=used)
        self.size += one.size[codes]

    def bytes(self) -> bytes:
        return np.ascontiguousarray(self.data.T)[np.ascontiguousarray(self.used.T)].tobytes()


def _names(names: np.ndarray) -> np.ndarray:
    names = np.asarray(names)
    return names if len(names) else np.array([b""], "S1")


def trade_points_bytes(t: RunTable) -> bytes:
    """Analytics.trades (field 7) for every trade of the table, as wire bytes."""
    n = t.trades
    if n == 0:
        return b""
    side_names = np.array([s.encode() for s in SIDE_NAMES], "S")
    strings = (t.t_id, t.t_entry, t.t_exit)
    width = 4 + sum(_string_width(s) for s in strings) + 3 * 9 + 2 + 3 \
        + sum(_string_width(_names(s)) for s in (side_names, t.reasons, t.nodes))
    m = _Matrix(n, width, first=4)  # slots 0-3: the field's tag and the message's length
    for k, s in enumerate(strings, 1):
        m.string(k, s)
    m.double(4, t.t_duration)
    m.double(5, t.t_pnl)
    m.double(6, t.t_return)
    m.uint(7, t.t_hour, 1)
    m.uint(8, t.t_minute, 2)
    m.category(9, t.t_side, side_names)
    m.category(10, t.t_reason, t.reasons)
    m.category(11, t.t_node, t.nodes)
    assert m.col == width
    m.data[0] = _TRADES_TAG
    m.used[0] = True
    _write_varint(m.data[1:4].T, m.used[1:4].T, m.size)
    return m.bytes()


def trade_point_messages(t: RunTable) -> list[apb.TradePoint]:
    """The same trade points as messages (the reference `trade_points_bytes` is tested against)."""
    return [apb.TradePoint(
        trade_id=t.t_id[i].decode(), entry_time=t.t_entry[i].decode(), exit_time=t.t_exit[i].decode(),
        duration_minutes=float(t.t_duration[i]), pnl=float(t.t_pnl[i]), return_pct=float(t.t_return[i]),
        entry_hour=int(t.t_hour[i]), entry_minute_of_day=int(t.t_minute[i]), side=SIDE_NAMES[int(t.t_side[i])],
        exit_reason=t.reasons[t.t_reason[i]].decode() if len(t.reasons) else "",
        node_id=t.nodes[t.t_node[i]].decode() if len(t.nodes) else "") for i in range(t.trades)]
