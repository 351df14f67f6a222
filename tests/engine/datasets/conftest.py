"""Upload tests get a data dir of their own (uploads are written under it), sharing the session's
SIM-NIFTY build through a symlink."""

from __future__ import annotations

import os

import pytest

from services.engine.settings import EngineSettings


@pytest.fixture
def own_data_dir(data_dir, tmp_path):
    mine = tmp_path / "data"
    (mine / "datasets").mkdir(parents=True)
    os.symlink(data_dir / "datasets" / "SIM-NIFTY", mine / "datasets" / "SIM-NIFTY")
    return mine


@pytest.fixture
def settings(own_data_dir, tmp_path) -> EngineSettings:
    return EngineSettings(grpc_addr="127.0.0.1:0", data_dir=own_data_dir, store_dir=tmp_path / "store",
                          users_file=tmp_path / "users.sqlite3", max_concurrent=2, max_queued=8,
                          max_running_per_caller=2, fsync=False, shutdown_grace_seconds=0.5)
