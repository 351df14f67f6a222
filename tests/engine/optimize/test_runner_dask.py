"""The optimizer on a real Dask cluster (LocalCluster, two worker processes): the same trials and
results as embedded, and a worker killed mid-sweep loses nothing and repeats nothing."""

from __future__ import annotations

import os
import signal

import pytest
from google.protobuf import json_format

from hindsight.v1 import optimization_pb2 as opb

from services.engine.core.catalog import Catalog
from services.engine.optimize import sweep
from services.engine.optimize.executor import DaskExecutor
from services.engine.optimize.runner import Optimization

from . import _dask_helpers as helpers
from .test_runner import EMA_CROSS

pytestmark = pytest.mark.slow

SPACE = {"parameters": [{"name": "fast", "path": "indicators[0].period", "int_range": {"low": 4, "high": 24, "step": 4}},
                        {"name": "slow", "path": "indicators[1].period", "int_range": {"low": 30, "high": 60, "step": 10}}]}


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return Catalog(tmp_path_factory.mktemp("data"))


def config() -> opb.OptimizationConfig:
    return json_format.ParseDict({"strategy": EMA_CROSS, "space": SPACE, "method": "grid", "symbol": "SIM-NIFTY",
                                  "start_date": "2021-03-01", "end_date": "2021-03-31"}, opb.OptimizationConfig())


def trials_of(events) -> list[opb.Trial]:
    return [e.trial_completed.trial for e in events if e.HasField("trial_completed")]


def test_a_worker_killed_mid_sweep_loses_and_repeats_nothing(client, catalog, tmp_path, monkeypatch):
    reference = []
    embedded = Optimization.prepare(config(), catalog).run(reference.extend, state_dir=tmp_path / "embedded")
    expected = {t.number: t for t in trials_of(reference)}
    assert len(expected) == 24

    pids = sorted(client.run(os.getpid).values())
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(0.4))  # chunks still running when the kill lands
    events = []
    killed = []

    def emit(batch):
        events.extend(batch)
        if not killed and len(trials_of(events)) >= 3:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    with DaskExecutor(client=client) as executor:
        outcome = Optimization.prepare(config(), catalog, executor=executor).run(emit, state_dir=tmp_path / "dask")
    assert killed, "the sweep ended before a worker could be killed"
    got = trials_of(events)
    assert sorted(t.number for t in got) == list(range(1, 25)), "every trial exactly once"
    for t in got:
        want = expected[t.number]
        assert dict(t.parameters) == dict(want.parameters)
        assert t.metrics == want.metrics
    assert [dict(t.parameters) for t in outcome.result.top] == [dict(t.parameters) for t in embedded.result.top]
    assert outcome.result.overfitting.pbo == pytest.approx(embedded.result.overfitting.pbo)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
