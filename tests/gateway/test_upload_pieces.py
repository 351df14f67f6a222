"""Uploads' pieces without a server: the messages as protobuf writes them, the re-chunking, the
413 of UPLOAD_TOO_LARGE, the settings and the OpenAPI operations (tests/gateway/test_uploads.py
serves them over real HTTP)."""

from __future__ import annotations

import random
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hindsight.v1 import datasets_pb2 as dpb

from services.gateway.bindings import compile_bindings
from services.gateway.endpoints import _EndStatuses
from services.gateway.errors import status_http
from services.gateway.openapi import UPLOAD_MEDIA_TYPES, build_openapi
from services.gateway.settings import GatewaySettings
from services.gateway.uploads import MESSAGE_BYTES, BodyEncoder, Rechunker

from .conftest import echo_class, services

MIB = 1 << 20


def body_of(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def test_only_resource_exhausted_upload_too_large_is_413() -> None:
    def status(code: int, reason: str) -> status_pb2.Status:
        out = status_pb2.Status(code=code, message="x")
        out.details.add().Pack(error_details_pb2.RetryInfo())
        out.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="hindsight"))
        return out

    assert status_http(status(code_pb2.RESOURCE_EXHAUSTED, "UPLOAD_TOO_LARGE")) == 413
    assert status_http(status(code_pb2.RESOURCE_EXHAUSTED, "QUEUE_FULL")) == 429
    assert status_http(status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED)) == 429
    assert status_http(status(code_pb2.INVALID_ARGUMENT, "UPLOAD_TOO_LARGE")) == 400


@pytest.mark.parametrize("content_type", ["text/csv", "", "application/x-ünïcode; q=" + "x" * 200])
@pytest.mark.parametrize("size", [1, 127, 128, 16383, 16384, MESSAGE_BYTES, MESSAGE_BYTES + 1])
def test_the_encoded_messages_are_what_protobuf_writes(content_type: str, size: int) -> None:
    by_name = {b.method.name: b for b in compile_bindings(services()) if b.request_stream}
    data = body_of(size)
    cut = [data[:size // 3], memoryview(data)[size // 3:]]
    dataset = BodyEncoder(by_name["UploadDataset"], content_type).encode(cut, size)
    assert dataset == dpb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(content_type=content_type,
                                                                           data=data)).SerializeToString()
    ingest = BodyEncoder(by_name["Ingest"], content_type).encode([data], size)  # field 20: a two-byte tag
    assert ingest == echo_class("IngestRequest")(file=httpbody_pb2.HttpBody(content_type=content_type,
                                                                            data=data)).SerializeToString()


def test_the_rechunker_cuts_exact_runs_without_losing_a_byte() -> None:
    rng = random.Random(1)
    body = body_of(5 * 1000 + 3)
    chunker = Rechunker(1000)
    runs: list[bytes] = []
    i = 0
    while i < len(body):
        n = rng.choice([1, 7, 999, 1000, 1001, 2500])
        runs += [b"".join(run) for run in chunker.add(body[i:i + n])]
        i += n
    rest, held = chunker.rest()
    assert [len(r) for r in runs] == [1000] * 5 and held == 3 and b"".join([*runs, *rest]) == body
    assert chunker.rest() == ([], 0)


def test_the_upload_settings_from_the_environment() -> None:
    assert GatewaySettings(docs_dir=None).max_upload_bytes == 1024 * MIB
    assert GatewaySettings.from_env({}).max_upload_bytes == 1024 * MIB
    assert GatewaySettings.from_env({"HINDSIGHT_GATEWAY_MAX_UPLOAD_MB": "5"}).max_upload_bytes == 5 * MIB
    assert GatewaySettings.from_env({"HINDSIGHT_GATEWAY_MAX_UPLOAD_MB": "0.5"}).max_upload_bytes == MIB // 2
    assert GatewaySettings.from_env({"HINDSIGHT_GATEWAY_UPLOAD_IDLE_TIMEOUT_S": "2.5"}).upload_idle_timeout_s == 2.5
    for bad in ("0", "-1", "lots", "inf", "nan"):
        with pytest.raises(ValueError, match="HINDSIGHT_GATEWAY_MAX_UPLOAD_MB"):
            GatewaySettings.from_env({"HINDSIGHT_GATEWAY_MAX_UPLOAD_MB": bad})
    with pytest.raises(ValueError, match="upload_idle_timeout_s"):
        GatewaySettings(docs_dir=None, upload_idle_timeout_s=0)


def test_the_upload_operations_in_the_openapi_document() -> None:
    doc = build_openapi(compile_bindings(services()), max_upload_bytes=5 * MIB)
    for path, query in (("/api/v1/datasets/{symbol}:upload", ["timezone", "calendar", "timeframe", "description",
                                                               "format"]),
                        ("/api/v1/datasets/{symbol}/options:upload", ["format"])):
        op = doc["paths"][path]["post"]
        params = [p for p in op["parameters"] if "name" in p]
        assert [(p["name"], p["in"]) for p in params] == [("symbol", "path"), *((q, "query") for q in query)]
        body = op["requestBody"]
        assert body["required"] is True and "at most 5 MiB" in body["description"]
        assert list(body["content"]) == list(UPLOAD_MEDIA_TYPES) == [
            "text/csv", "application/gzip", "application/vnd.apache.parquet", "application/octet-stream"]
        assert all(c == {"schema": {"type": "string", "format": "binary"}} for c in body["content"].values())
        assert "UPLOAD_TOO_LARGE" in op["responses"]["413"]["description"]
        assert {"400", "408", "413", "429"} <= set(op["responses"]) and "415" not in op["responses"]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/hindsight.v1.DatasetDetail"}
    validate = pytest.importorskip("openapi_spec_validator").validate
    validate(doc)


class _EndedCall:
    """What a grpc.aio call's done callback is given: its status, through coroutines."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any = ()) -> None:
        self._status = (code, details, grpc.aio.Metadata(*trailing))

    async def code(self) -> grpc.StatusCode:
        return self._status[0]

    async def details(self) -> str:
        return self._status[1]

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        return self._status[2]


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def test_the_engines_status_wins_over_grpcs_internal_error_of_a_write() -> None:
    core = "Internal error from Core"
    ended = _EndStatuses()
    ended(_EndedCall(grpc.StatusCode.RESOURCE_EXHAUSTED, "too large", [("grpc-status-details-bin", b"x")]))
    ended(_EndedCall(grpc.StatusCode.INTERNAL, core))  # the write's failure, set after it
    real = ended.real(_error(grpc.StatusCode.INTERNAL, core))
    assert (real.code(), real.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "too large")
    assert real.trailing_metadata() == grpc.aio.Metadata(("grpc-status-details-bin", b"x"))
    # Anything else is the error itself: the engine's own INTERNAL, or no other status known.
    engine_internal = _error(grpc.StatusCode.INTERNAL, "engine exploded")
    assert ended.real(engine_internal) is engine_internal
    alone = _EndStatuses()
    alone(_EndedCall(grpc.StatusCode.INTERNAL, core))
    only = _error(grpc.StatusCode.INTERNAL, core)
    assert alone.real(only) is only
