"""Atomic writes: content replaced whole, temp files never left behind."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from storage.atomic import gzip_json, write_atomic, write_json_atomic


def write_json_gz_atomic(path: Path, obj: object) -> int:
    """What day files are: gzipped compact JSON, written atomically."""
    return write_atomic(path, gzip_json(obj))


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    assert write_atomic(target, b"first") == 5
    assert write_atomic(target, b"second!") == 7
    assert target.read_bytes() == b"second!"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failed_replace_keeps_old_file_and_leaves_no_temp(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.bin"
    write_atomic(target, b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_unserializable_object_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json_gz_atomic(tmp_path / "x.json.gz", {"bad": object()})
    with pytest.raises(ValueError):  # metadata (indented, for people) refuses NaN
        write_json_atomic(tmp_path / "m.json", {"nan": float("nan")})
    assert os.listdir(tmp_path) == []


def test_compact_json_writes_non_finite_numbers_as_null(tmp_path: Path) -> None:
    # Day files are orjson's: JSON has no NaN/Infinity, so they are null (not an error that
    # would fail a run over one undefined value).
    write_json_gz_atomic(tmp_path / "x.json.gz", {"nan": float("nan"), "inf": float("-inf"), "x": 1.5})
    assert json.loads(gzip.decompress((tmp_path / "x.json.gz").read_bytes())) == {"nan": None, "inf": None, "x": 1.5}


def test_temp_file_of_a_crashed_writer_is_replaced(tmp_path: Path) -> None:
    import threading

    target = tmp_path / "a.json.gz"
    stale = tmp_path / f".a.json.gz.{os.getpid()}-{threading.get_ident()}.tmp"
    stale.write_bytes(b"half a file from a process that died" * 100)
    write_json_gz_atomic(target, {"a": 1})
    assert json.loads(gzip.decompress(target.read_bytes())) == {"a": 1}
    assert os.listdir(tmp_path) == ["a.json.gz"]
    assert (target.stat().st_mode & 0o777) == 0o600  # private to the store's owner


def test_json_gz_roundtrip_and_deterministic(tmp_path: Path) -> None:
    doc = {"date": "2024-10-24", "summary": {"total_pnl": "38.70"}, "name": "ŋifty"}
    size = write_json_gz_atomic(tmp_path / "a.json.gz", doc)
    write_json_gz_atomic(tmp_path / "b.json.gz", doc)
    raw = (tmp_path / "a.json.gz").read_bytes()
    assert size == len(raw)
    assert raw == (tmp_path / "b.json.gz").read_bytes()  # mtime=0: same doc, same bytes
    assert json.loads(gzip.decompress(raw)) == doc


def test_json_atomic_is_readable(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "m.json", {"a": [1, 2]}, fsync=False)
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [1, 2]}
