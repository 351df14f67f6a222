"""The two pieces of protobuf's wire format the engine puts together itself, for events whose
parts were serialized by the protobuf library already (see `envelope` and servicer.batch_bytes).

The encoding of a message is the concatenation of its fields' encodings, and parsers merge
concatenated encodings; serializing each part with protobuf and joining them in field-number
order gives the same bytes as serializing the whole message (tests compare the two).
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:  # event ids of most runs
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) whose tag byte(s) are `tag`."""
    return tag + varint(len(payload)) + payload
