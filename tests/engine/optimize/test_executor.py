"""Executors: the embedded default and a real Dask cluster (LocalCluster, two worker processes)
— same results, the context sent to each worker once, a worker killed mid-sweep, errors,
cancellation, and how the executor is chosen from HINDSIGHT_DASK_SCHEDULER."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import fields
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.engine.core.backtest import RunSettings
from services.engine.core.catalog import Catalog
from services.engine.core.spec import parse_strategy_json
from services.engine.optimize import sweep
from services.engine.optimize.executor import (
    DaskExecutor,
    EmbeddedExecutor,
    ExecutorError,
    make_executor,
)

from . import _dask_helpers as helpers

REPO = Path(__file__).resolve().parents[3]
SMA = REPO / "examples" / "strategies" / "sma_cross.json"
SETTINGS = RunSettings(start=date(2020, 1, 1), end=date(2020, 3, 31))

pytestmark = pytest.mark.slow


def trials(periods) -> list:
    base = parse_strategy_json(SMA.read_text())
    out = []
    for p in periods:
        s = type(base)()
        s.CopyFrom(base)
        s.indicators[0].period = p
        out.append(s)
    return out


def chunked(strategies, size) -> list[tuple[int, list]]:
    return [(k, strategies[i:i + size]) for k, i in enumerate(range(0, len(strategies), size))]


def same(a: list, b: list) -> bool:
    """TrialResult lists equal, NaN == NaN."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.error == y.error
        assert x.metrics.keys() == y.metrics.keys()
        for k in x.metrics:
            u, v = x.metrics[k], y.metrics[k]
            assert (math.isnan(u) and math.isnan(v)) or u == v, k
        np.testing.assert_array_equal(x.daily_returns, y.daily_returns)
    return True


@pytest.fixture(scope="module")
def context(data_dir) -> helpers.CountingContext:
    """Two quarters of SIM-NIFTY minute bars (the run's quarter and one of warm-up)."""
    bars = Catalog(data_dir).load("SIM-NIFTY", date(2019, 10, 1), date(2020, 3, 31))
    built = sweep.SweepContext.build(trials([10])[0], bars, SETTINGS)
    return helpers.CountingContext(**{f.name: getattr(built, f.name) for f in fields(built)})


@pytest.fixture(scope="module")
def reference(context) -> dict[int, list]:
    """period → the embedded executor's TrialResult of that trial."""
    strategies = trials(range(2, 26))
    with EmbeddedExecutor().session(context) as s:
        results = [r for _, rs in s.map(chunked(strategies, 4)) for r in rs]
    return {s.indicators[0].period: r for s, r in zip(strategies, results)}


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


@pytest.fixture
def client(cluster):
    """A client of the module's cluster, with both workers up (a test may kill some)."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def eventually(predicate, timeout: float = 10.0) -> bool:
    """predicate() became true within `timeout` s (the scheduler acts on messages later)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ours(client) -> list[str]:
    """Keys of this module's sweeps the cluster still holds (chunks or contexts)."""
    return [k for k in client.who_has() if k.startswith(("hindsight-chunk", "CountingContext"))]


def worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def check(results: list[tuple[int, list]], chunks: list[tuple[int, list]], reference) -> None:
    """Every chunk exactly once, each with the reference's results."""
    assert sorted(k for k, _ in results) == [k for k, _ in chunks]
    by_key = dict(results)
    for key, strategies in chunks:
        assert same(by_key[key], [reference[s.indicators[0].period] for s in strategies])


def test_embedded_executor_evaluates_each_chunk_in_order(context, reference):
    chunks = chunked(trials(range(2, 12)), 3)
    with EmbeddedExecutor() as ex, ex.session(context) as s:
        out = list(s.map(chunks))
    assert [k for k, _ in out] == [0, 1, 2, 3]
    check(out, chunks, reference)


def test_dask_results_equal_the_embedded_and_the_context_goes_to_each_worker_once(
        client, context, reference, monkeypatch):
    # 0.2 s a chunk, 12 chunks on 2 workers: longer than the scheduler's Active Memory Manager
    # interval (2 s), which drops replicas no queued task needs; while a sweep keeps every
    # worker busy, each keeps its copy.
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(0.2))
    chunks = chunked(trials(range(2, 26)), 2)
    before = client.run(helpers.loads)
    with DaskExecutor(client=client) as ex, ex.session(context) as s:
        key = s._context_future.key
        assert len(client.who_has([s._context_future])[key]) == 2  # broadcast: both workers
        out = list(s.map(chunks))
        after = client.run(helpers.loads)
        again = list(s.map(chunks[:3]))                            # a second batch, same context
        assert s.scatters == 1
    check(out, chunks, reference)
    check(again, chunks[:3], reference)
    # Each worker unpickled the context once for its share of the 12 tasks (not once per task).
    assert {w: after[w] - before.get(w, 0) for w in after} == {w: 1 for w in after}
    assert eventually(lambda: key not in client.who_has())         # released by close()


class _Twice:
    """distributed.as_completed reporting every future twice."""

    def __init__(self, real):
        self.real = real

    def __call__(self, *args, **kwargs):
        ac = self.real(*args, **kwargs)
        update = ac.update
        ac.update = lambda futures: update([f for f in futures for _ in (0, 1)])
        return ac


def test_a_chunk_reported_twice_is_yielded_once(client, context, reference, monkeypatch):
    import distributed

    monkeypatch.setattr(distributed, "as_completed", _Twice(distributed.as_completed))
    chunks = chunked(trials(range(2, 14)), 2)
    with DaskExecutor(client=client) as ex, ex.session(context) as s:
        check(list(s.map(chunks)), chunks, reference)


def test_a_worker_killed_mid_sweep_has_its_chunks_run_again(client, context, reference,
                                                            monkeypatch):
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(0.4))
    chunks = chunked(trials(range(2, 26)), 1)   # 24 chunks of 0.4 s on 2 workers: ~5 s
    pids = worker_pids(client)
    out = []
    with DaskExecutor(client=client) as ex, ex.session(context) as s:
        for key, results in s.map(chunks):
            out.append((key, results))
            if len(out) == 3:                  # both workers busy with chunks: kill one
                processing = client.processing()
                victim = next(w for w, keys in processing.items() if keys)
                assert any(k.startswith("hindsight-chunk") for k in processing[victim])
                os.kill(pids[victim], signal.SIGKILL)
    check(out, chunks, reference)


def test_the_context_lost_with_every_worker_is_scattered_again(client, context, reference,
                                                               monkeypatch):
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(0.3))
    chunks = chunked(trials(range(2, 14)), 1)
    out = []
    with DaskExecutor(client=client) as ex, ex.session(context) as s:
        for key, results in s.map(chunks):
            out.append((key, results))
            if len(out) == 2:                  # the nannies restart them, empty
                for pid in worker_pids(client).values():
                    os.kill(pid, signal.SIGKILL)
        assert s.scatters == 2
    check(out, chunks, reference)


def test_an_evaluate_exception_propagates_and_cancels_the_rest(client, context, monkeypatch):
    monkeypatch.setattr(sweep, "evaluate", helpers.FailingEvaluate(5))
    chunks = chunked(trials(range(2, 26)), 1)
    with DaskExecutor(client=client, retries=0) as ex, ex.session(context) as s:
        with pytest.raises(ValueError, match="boom: period 5"):
            for _ in s.map(chunks):
                pass
        assert not s._live
    assert eventually(lambda: not ours(client)), ours(client)


def test_close_mid_sweep_cancels_the_outstanding_chunks(client, context, monkeypatch):
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(0.5))
    chunks = chunked(trials(range(2, 26)), 1)
    with DaskExecutor(client=client) as ex:
        s = ex.session(context)
        it = s.map(chunks)
        first = next(it)
        assert first[0] in range(24)
        assert s._live                         # others in flight (at most 2 × 2 threads)
        assert len(s._live) <= 4
        started = time.monotonic()
        s.close()
        assert list(it) == []                  # the iteration ends
        assert time.monotonic() - started < 5
    assert eventually(lambda: not any(client.processing().values()))
    assert eventually(lambda: not ours(client)), ours(client)


def test_close_from_another_thread_ends_a_blocked_map(client, context, monkeypatch):
    monkeypatch.setattr(sweep, "evaluate", helpers.SlowEvaluate(2.0))
    with DaskExecutor(client=client) as ex, ex.session(context) as s:
        threading.Timer(0.5, s.close).start()
        started = time.monotonic()
        assert list(s.map(chunked(trials(range(2, 10)), 1))) == []
        assert time.monotonic() - started < 1.9   # before the first chunk could finish
        with pytest.raises(ExecutorError, match="closed"):
            s.map([])


def test_make_executor_without_a_scheduler_is_embedded_and_imports_no_dask():
    code = textwrap.dedent("""
        import os, sys
        os.environ.pop("HINDSIGHT_DASK_SCHEDULER", None)
        from services.engine.optimize.executor import EmbeddedExecutor, executor_from_env, make_executor
        assert isinstance(make_executor(None), EmbeddedExecutor)
        assert isinstance(make_executor(""), EmbeddedExecutor)
        assert isinstance(executor_from_env(), EmbeddedExecutor)
        assert "distributed" not in sys.modules and "dask" not in sys.modules, "dask imported"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "HINDSIGHT_DASK_SCHEDULER"}
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_scheduler_setting_comes_from_the_environment(monkeypatch):
    from services.engine.settings import EngineSettings

    monkeypatch.setenv("HINDSIGHT_DASK_SCHEDULER", " tcp://10.0.0.5:8786 ")
    assert EngineSettings.from_env().dask_scheduler == "tcp://10.0.0.5:8786"
    monkeypatch.delenv("HINDSIGHT_DASK_SCHEDULER")
    assert EngineSettings.from_env().dask_scheduler == ""


def test_a_scheduler_that_cannot_be_reached_is_a_clear_error_fast(monkeypatch):
    import socket

    from services.engine.optimize.executor import executor_from_env

    with socket.socket() as sock:              # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=rf"HINDSIGHT_DASK_SCHEDULER={address}: cannot connect"):
        make_executor(address, connect_timeout=5)
    assert time.monotonic() - started < 3      # refused: no waiting for the timeout

    monkeypatch.setenv("HINDSIGHT_DASK_SCHEDULER", address)
    with pytest.raises(ExecutorError, match="HINDSIGHT_DASK_SCHEDULER"):
        executor_from_env(connect_timeout=1)

    for bad in ("nonsense", "foo://host:8786", "tcp://host:port"):
        with pytest.raises(ExecutorError, match="is not a Dask scheduler address"):
            make_executor(bad, connect_timeout=1)


def test_a_port_that_is_no_scheduler_is_an_error_within_the_timeout():
    """distributed's Client waits for ever for a handshake that never comes: probed first."""
    import socket

    with socket.socket() as silent:            # accepts connections, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ExecutorError, match="no Dask scheduler answered"):
            make_executor(address, connect_timeout=1)
        assert time.monotonic() - started < 5


def test_make_executor_connects_to_a_running_scheduler(cluster, context, reference):
    with make_executor(cluster.scheduler_address, connect_timeout=10) as ex:
        assert isinstance(ex, DaskExecutor)
        ex.client.wait_for_workers(2, timeout=60)
        chunks = chunked(trials(range(2, 8)), 3)
        with ex.session(context) as s:
            check(list(s.map(chunks)), chunks, reference)
