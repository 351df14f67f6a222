"""A real engine (grpc.aio on port 0) over a real store on disk, and a channel to it."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
from google.protobuf import json_format

from services.engine.core.catalog import Catalog
from services.engine.settings import EngineSettings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "strategies"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data dir per test session: SIM-NIFTY is generated once and shared (read-only)."""
    d = tmp_path_factory.mktemp("data")
    Catalog(d).load("SIM-NIFTY", None, None)
    return d


def strategy(name: str = "rsi_reversion.json"):
    from hindsight.v1 import strategy_pb2

    return json_format.Parse((EXAMPLES / name).read_text(), strategy_pb2.Strategy())


@pytest.fixture
def settings(data_dir, tmp_path) -> EngineSettings:
    return EngineSettings(grpc_addr="127.0.0.1:0", data_dir=data_dir, store_dir=tmp_path / "store",
                          users_file=tmp_path / "users.sqlite3",
                          max_concurrent=2, max_queued=8, max_running_per_caller=2, fsync=False,
                          shutdown_grace_seconds=0.5)


@pytest.fixture
async def engine(settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    yield eng
    await eng.stop(0.2)


USERS = {"alice": "user", "bob": "user", "root": "admin"}


@pytest.fixture
def tokens(settings) -> dict[str, tuple[tuple[str, str], ...]]:
    """Users alice, bob (role user) and root (admin) in the engine's users database, each with
    one API key: user → the call metadata carrying it. Ask for it before `engine`."""
    from services.engine.auth import UserStore

    users = UserStore(settings.users_db)
    out = {}
    for name, role in USERS.items():
        users.add_user(name, role)
        out[name] = (("authorization", f"Bearer {users.issue_key(name)}"),)
    users.close()
    return out


@pytest.fixture
async def stub(engine):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as channel:
        yield pb_grpc.BacktestServiceStub(channel)


def start_request(days=("2024-01-01", "2024-01-12"), name="rsi_reversion.json", **kw) -> pb.StartBacktestRequest:
    return pb.StartBacktestRequest(strategy=strategy(name), strategy_id=kw.pop("strategy_id", "rsi"),
                                   symbol=kw.pop("symbol", "SIM-NIFTY"), start_date=days[0], end_date=days[1], **kw)


async def collect(stub, backtest_id: str, after: int = 0, limit: int | None = None) -> list[pb.BacktestEvent]:
    out = []
    call = stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=backtest_id, after_event_id=after))
    async for ev in call:
        out.append(ev)
        if limit is not None and len(out) >= limit:
            call.cancel()
            break
    return out


def kinds(events) -> list[str]:
    return [e.WhichOneof("event") for e in events]


def dump(events) -> list[str]:
    return [json.dumps(json_format.MessageToDict(e), sort_keys=True) for e in events]
