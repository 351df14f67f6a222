"""Uploads through the real gateway and the real engine (DatasetService): a CSV sent as the raw
request body (as `curl --data-binary @file.csv -H 'Content-Type: text/csv'` sends it) becomes a
dataset its owner reads back; a truncated upload leaves none; another user's dataset answers
exactly as a missing one on every route that names one.

Skipped while services/engine/datasets/servicer.py has no UploadDataset of its own (the engine's
side is written apart from the gateway's; tests/gateway/test_uploads.py covers the gateway against
a fake engine)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from .conftest import StartGateway

REPO = Path(__file__).resolve().parents[2]
CSV = REPO / "tests" / "data" / "daily_ohlc.csv"  # 600 daily bars


def _engine_serves_uploads() -> bool:
    from services.engine.datasets.servicer import DatasetServicer

    return "UploadDataset" in vars(DatasetServicer)


pytestmark = pytest.mark.asyncio(loop_scope="session")
needs_uploads = pytest.mark.skipif(not _engine_serves_uploads(), reason="the engine's DatasetServicer has no "
                                   "UploadDataset yet (services/engine/datasets/servicer.py)")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(start_gateway: StartGateway, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """A real engine with users alice and bob, a gateway in front of it, and alice's dataset ALICE1
    uploaded through it."""
    from services.engine.auth import UserStore
    from services.engine.server import create_server
    from services.engine.settings import EngineSettings

    data = tmp_path_factory.mktemp("engine-data")
    settings = EngineSettings(grpc_addr="127.0.0.1:0", data_dir=data, store_dir=data / "store", max_concurrent=2,
                              fsync=False, shutdown_grace_seconds=0.5)
    users = UserStore(settings.users_db)
    keys = {}
    for name in ("alice", "bob"):
        users.add_user(name, "user")
        keys[name] = {"authorization": f"Bearer {users.issue_key(name)}"}
    users.close()
    engine = await create_server(settings, "127.0.0.1:0")
    await engine.start()
    try:
        base = await start_gateway(f"127.0.0.1:{engine.port}")
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await c.post("/api/v1/datasets/ALICE1:upload?timezone=UTC&description=daily%20bars",
                             content=CSV.read_bytes(), headers={**keys["alice"], "content-type": "text/csv"})
            assert r.status_code == 200, r.text
        yield {"base": base, "keys": keys, "uploaded": r.json()}
    finally:
        await engine.stop(0.2)


@needs_uploads
async def test_a_csv_sent_as_the_raw_body_is_a_dataset_its_owner_reads(stack: dict[str, Any]) -> None:
    uploaded = stack["uploaded"]
    assert uploaded["dataset"]["symbol"] == "ALICE1" and uploaded["dataset"]["description"] == "daily bars"
    assert uploaded["dataset"]["source"] == "upload" and uploaded["dataset"]["owner"] == "alice"
    assert uploaded["quality"]["rows"] == "600" and uploaded["quality"]["usable"] is True
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        r = await c.get("/api/v1/datasets/ALICE1", headers=stack["keys"]["alice"])
        assert r.status_code == 200, r.text
        detail = r.json()
        assert detail["dataset"]["symbol"] == "ALICE1" and detail["quality"]["rows"] == "600"
        assert detail["dataset"]["bars"] == "600" and detail["head"] and detail["tail"]
        listed = (await c.get("/api/v1/datasets", headers=stack["keys"]["alice"])).json()["datasets"]
        assert "ALICE1" in {d["symbol"] for d in listed}


@needs_uploads
@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl here")
async def test_curl_uploads_a_file_as_the_proto_says(stack: dict[str, Any]) -> None:
    """datasets.proto's example: `curl --data-binary @nifty.csv -H 'Content-Type: text/csv' …:upload`."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--data-binary", f"@{CSV}", "-H", "Content-Type: text/csv",
        "-H", f"Authorization: {stack['keys']['alice']['authorization']}",
        "-w", "\n%{http_code}", f"{stack['base']}/api/v1/datasets/CURL1:upload?calendar=24/7&timezone=UTC",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    body, _, status = out.decode().rpartition("\n")
    assert status == "200", (body, err)
    assert json.loads(body)["dataset"]["symbol"] == "CURL1"
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        r = await c.get("/api/v1/datasets/CURL1", headers=stack["keys"]["alice"])
        assert r.status_code == 200 and r.json()["quality"]["rows"] == "600"


@needs_uploads
async def test_a_truncated_upload_leaves_no_dataset(stack: dict[str, Any]) -> None:
    """Headers and half the declared Content-Length, then the connection closes. The half ends
    at a line's end: were it taken for the whole file, it would make a good dataset."""
    body = CSV.read_bytes()
    half = body.index(b"\n", len(body) // 2) + 1
    host, port = stack["base"].removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    token = stack["keys"]["alice"]["authorization"]
    writer.write(f"POST /api/v1/datasets/HALF1:upload HTTP/1.1\r\nhost: {host}\r\nauthorization: {token}\r\n"
                 f"content-type: text/csv\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body[:half])
    await writer.drain()
    await asyncio.sleep(0.5)  # the call is open and the first half in the engine
    writer.close()
    await writer.wait_closed()
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        for _ in range(20):  # the engine learns of the cancellation a moment later
            await asyncio.sleep(0.1)
            r = await c.get("/api/v1/datasets/HALF1", headers=stack["keys"]["alice"])
            assert r.status_code == 404, r.text
        listed = (await c.get("/api/v1/datasets", headers=stack["keys"]["alice"])).json()["datasets"]
        assert "HALF1" not in {d["symbol"] for d in listed}
        # The symbol is free: the whole file uploads under it.
        r = await c.post("/api/v1/datasets/HALF1:upload", content=body,
                         headers={**stack["keys"]["alice"], "content-type": "text/csv"})
        assert r.status_code == 200, r.text


# Every route naming one of the caller's datasets. (UploadDataset names a new one: bob may upload
# his own ALICE1, the proto's rule.)
ROUTES = [
    ("GET", "/api/v1/datasets/{id}"),
    ("DELETE", "/api/v1/datasets/{id}"),
    ("POST", "/api/v1/datasets/{id}/options:upload"),
]


def _shape(r: httpx.Response, ident: str) -> tuple:
    body = r.text.replace(ident, "<id>")
    body = re.sub(r'"request_id":\s*"[^"]*"', '"request_id":"<rid>"', body)
    return r.status_code, r.headers.get("content-type"), body


async def test_the_matrix_covers_every_route_with_a_symbol() -> None:
    from services.gateway.app import default_services
    from services.gateway.bindings import compile_bindings

    served = {(b.http_method, b.template.template.replace("{symbol}", "{id}"))
              for b in compile_bindings(default_services())
              if "symbol" in b.bound_fields() and b.method.name != "UploadDataset"}
    assert served == set(ROUTES)


@needs_uploads
@pytest.mark.parametrize("method,path", ROUTES)
async def test_another_users_dataset_is_exactly_a_missing_one(stack: dict[str, Any], method: str, path: str) -> None:
    bob = {**stack["keys"]["bob"], "content-type": "text/csv"}
    body = b"" if method != "POST" else CSV.read_bytes()
    async with httpx.AsyncClient(base_url=stack["base"], timeout=30) as c:
        theirs = await c.request(method, path.format(id="ALICE1"), headers=bob, content=body)
        absent = await c.request(method, path.format(id="NOSUCH1"), headers=bob, content=body)
        assert theirs.status_code == 404, theirs.text
        assert _shape(theirs, "ALICE1") == _shape(absent, "NOSUCH1")
        mine = await c.get("/api/v1/datasets/ALICE1", headers=stack["keys"]["alice"])
        assert mine.status_code == 200 and mine.json()["dataset"]["options"] != "chain"
