"""Crash-safe runs that continue.

- A real engine process killed with SIGKILL mid-run (twice: once while running, once while
  continuing) continues its runs when it starts again: ids contiguous from 1, every event it
  had written kept byte for byte (nothing sent again under a new id), and the finished run's
  event bodies, day files, metrics and daily summaries equal an uninterrupted run's.
- Logs cut or corrupted at the tail, of finished and of running runs: every stream ends with a
  terminal event, and the index, progress, daily summaries, day files and log agree.
- A run whose checkpoint (or log) no longer matches its recomputation ends with backtest_failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

from services.engine import events as ev
from storage import COMPLETED, QUEUED, RUNNING, BacktestRecord, LocalStore
from storage.eventlog import LOG_NAME, checksum

from .conftest import REPO, collect, kinds, start_request, strategy

_FRAME = struct.Struct("<II")


# --- helpers -------------------------------------------------------------------------------------

def frames(path: Path) -> list[bytes]:
    """The intact records of a log file, read without touching it (no torn-tail cut)."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 8 <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        payload = data[pos + 8:pos + 8 + length]
        if len(payload) != length or checksum(payload) != crc:
            break
        out.append(payload)
        pos += 8 + length
    return out


def write_frames(path: Path, payloads: list[bytes], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(_FRAME.pack(len(p), checksum(p)) + p for p in payloads) + tail)


def ids_and_bodies(payloads: list[bytes]) -> tuple[list[int], list[bytes]]:
    pairs = [ev.split_stamp(p) for p in payloads]
    return [i for i, _ in pairs], [b for _, b in pairs]


def comparable(bodies: list[bytes]) -> list[bytes]:
    """Bodies with the backtest's own id cleared (backtest_completed names it)."""
    out = []
    for body in bodies:
        if ev.body_kind(body) == "backtest_completed":
            msg = pb.BacktestEvent.FromString(body)
            msg.backtest_completed.backtest_id = ""
            body = msg.SerializeToString(deterministic=True)
        out.append(body)
    return out


def day_files(run_dir: Path) -> dict[str, bytes]:
    days = run_dir / "days"
    return {f"{d.name}/{f.name}": f.read_bytes() for d in sorted(days.iterdir()) if d.is_dir()
            for f in sorted(d.iterdir()) if not f.name.startswith(".")} if days.is_dir() else {}


def run_dir(store_root: Path, bid: str) -> Path:
    found = list(store_root.glob(f"users/*/backtests/{bid}"))
    assert len(found) == 1, (bid, found)
    return found[0]


def no_fees(name: str = "sma_cross.json"):
    s = strategy(name)
    s.execution.commission_pct = 0
    s.execution.slippage_pct = 0
    return s


def request(days, name: str = "sma_cross.json", **kw) -> pb.StartBacktestRequest:
    return pb.StartBacktestRequest(strategy=no_fees(name), strategy_id="crash", symbol="SIM-NIFTY",
                                   start_date=days[0], end_date=days[1], **kw)


def summary_view(bt: pb.Backtest) -> dict:
    return {"metrics": json_format.MessageToDict(bt.metrics), "summary": json_format.MessageToDict(bt.summary),
            "daily": [json_format.MessageToDict(d) for d in bt.daily_summaries]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineProcess:
    """`hindsight engine` in a child process over a given store."""

    def __init__(self, data_dir: Path, store_dir: Path, log_file: Path, *, fsync: bool = False):
        self.port = _free_port()
        env = {**os.environ, "HINDSIGHT_DATA_DIR": str(data_dir), "HINDSIGHT_STORE_DIR": str(store_dir),
               "HINDSIGHT_GRPC_ADDR": f"127.0.0.1:{self.port}", "HINDSIGHT_FSYNC": "1" if fsync else "0",
               "HINDSIGHT_MAX_CONCURRENT": "4", "HINDSIGHT_MAX_RUNNING_PER_CALLER": "4",
               "HINDSIGHT_STARTS_PER_MINUTE": "1000"}
        self._out = open(log_file, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "engine"], cwd=REPO, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.BacktestServiceStub(self.channel)
        self._raw_stream = self.channel.unary_stream(
            "/hindsight.v1.BacktestService/StreamBacktest",
            request_serializer=pb.StreamBacktestRequest.SerializeToString, response_deserializer=None)
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + 300  # a cold numba cache compiles every kernel first
        while True:
            assert self.proc.poll() is None, log_file.read_text()
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "the engine did not start"
            time.sleep(0.1)

    def stream(self, bid: str, after: int = 0, timeout: float = 120):
        return self._raw_stream(pb.StreamBacktestRequest(backtest_id=bid, after_event_id=after), timeout=timeout)

    def read_all(self, bid: str, timeout: float = 120) -> list[bytes]:
        return list(self.stream(bid, timeout=timeout))

    def read_until(self, bid: str, n: int) -> list[bytes]:
        out = []
        call = self.stream(bid)
        for payload in call:
            out.append(payload)
            if len(out) >= n:
                break
        call.cancel()
        return out

    def wait_for_events(self, bid: str, n: int, timeout: float = 120) -> None:
        """Until the run's log holds n events (or it has ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bt = self.stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid, omit_days=True))
            if bt.last_event_id >= n or bt.status in (pb.BACKTEST_STATUS_COMPLETED, pb.BACKTEST_STATUS_FAILED):
                return
            time.sleep(0.005)
        raise AssertionError(f"{bid} did not reach {n} events")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        self.proc.wait(30)
        self.channel.close()
        self._out.close()

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._out.close()


# --- kill -9 mid-run, twice --------------------------------------------------------------------

# SMA 10/20 without fees trades ~10 times a day: ~20,000 events over two years.
YEARS = request(("2024-01-01", "2025-12-31"))                      # a block of days per kernel call
WITH_TICKS = request(("2025-01-01", "2025-12-31"), tick_interval=30)  # a day per call, tick updates


def _kill_and_continue(data_dir: Path, tmp_path: Path, seed: int, *, fsync: bool,
                       requests: list[pb.StartBacktestRequest], max_events: int = 12000) -> None:
    rng = random.Random(seed)
    store_dir = tmp_path / "store"
    engine_log = tmp_path / "engine.log"
    eng = EngineProcess(data_dir, store_dir, engine_log, fsync=fsync)
    ended = False
    try:
        bids = []
        for req in requests:
            bids.append(eng.stub.StartBacktest(req).backtest_id)
            time.sleep(rng.uniform(0.0, 0.3))  # runs at different points when the engine dies
        # First kill: while the runs run, once the first has a random number of events.
        n_events = rng.randint(5, max_events)
        seen = eng.read_until(bids[0], min(n_events, 300))
        eng.wait_for_events(bids[0], n_events)
        eng.kill()
        logs = {bid: run_dir(store_dir, bid) / LOG_NAME for bid in bids}
        kept = {bid: frames(path) for bid, path in logs.items()}
        assert kept[bids[0]][:len(seen)] == seen  # what a client saw is what the log holds
        assert ev.body_kind(ev.split_stamp(kept[bids[0]][-1])[1]) not in ev.TERMINAL_KINDS

        # Second kill: while the engine continues them (the second run, a few events on).
        eng = EngineProcess(data_dir, store_dir, engine_log, fsync=fsync)
        eng.wait_for_events(bids[-1], len(kept[bids[-1]]) + rng.randint(1, 1500))
        eng.kill()
        kept2 = {bid: frames(path) for bid, path in logs.items()}
        for bid in bids:
            assert kept2[bid][:len(kept[bid])] == kept[bid]

        eng = EngineProcess(data_dir, store_dir, engine_log, fsync=fsync)
        finals = {bid: eng.read_all(bid) for bid in bids}
        # The same requests, uninterrupted, on the same engine.
        distinct = {req.SerializeToString(deterministic=True): req for req in requests}
        fresh = {key: eng.stub.StartBacktest(req).backtest_id for key, req in distinct.items()}
        baselines = {key: eng.read_all(bid) for key, bid in fresh.items()}
        for bid, req, final in zip(bids, requests, finals.values()):
            key = req.SerializeToString(deterministic=True)
            base_bid, base = fresh[key], baselines[key]
            ids, bodies = ids_and_bodies(final)
            assert ids == list(range(1, len(final) + 1))
            assert final[:len(kept2[bid])] == kept2[bid]  # nothing in the log was sent again or changed
            assert ev.body_kind(bodies[-1]) == "backtest_completed", engine_log.read_text()[-3000:]
            assert comparable(bodies) == comparable(ids_and_bodies(base)[1])
            assert day_files(run_dir(store_dir, bid)) == day_files(run_dir(store_dir, base_bid))
            bt = eng.stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
            ref = eng.stub.GetBacktest(pb.GetBacktestRequest(backtest_id=base_bid))
            n_days = sum(1 for b in bodies if ev.body_kind(b) == "day_completed")
            assert bt.status == pb.BACKTEST_STATUS_COMPLETED and bt.last_event_id == len(final)
            assert bt.progress.completed_days == n_days == bt.progress.total_days == len(bt.daily_summaries)
            assert summary_view(bt) == summary_view(ref)
            assert not (run_dir(store_dir, bid) / "checkpoint.json").exists()
        eng.stop()
        ended = True
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- engine log (tail) ---\n{engine_log.read_text()[-4000:]}") from exc
    finally:
        if not ended:
            with contextlib.suppress(Exception):
                eng.stop()


def test_engine_killed_twice_mid_run_continues_its_runs(data_dir, tmp_path):
    _kill_and_continue(data_dir, tmp_path, seed=11, fsync=False, requests=[YEARS, WITH_TICKS, YEARS])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 5])
def test_engine_killed_at_random_points_continues_its_runs(data_dir, tmp_path, seed):
    _kill_and_continue(data_dir, tmp_path, seed=seed, fsync=seed == 3, requests=[YEARS, WITH_TICKS, YEARS])


@pytest.mark.slow
def test_option_run_killed_mid_run_continues(data_dir, tmp_path):
    straddle = request(("2023-01-01", "2025-12-31"), name="short_straddle.json")  # ~6,000 events
    _kill_and_continue(data_dir, tmp_path, seed=7, fsync=False, requests=[straddle, straddle], max_events=3000)


# --- damaged logs, in process --------------------------------------------------------------------

@contextlib.asynccontextmanager
async def serving(settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as channel:
            yield eng, pb_grpc.BacktestServiceStub(channel)
    finally:
        await eng.stop(0.2)


SHORT = ("2024-01-01", "2024-02-29")


async def _finished_run(settings, days=SHORT, **kw):
    """A completed run: (backtest id, its events, its folder's day files, its GetBacktest)."""
    async with serving(settings) as (eng, stub):
        bid = (await stub.StartBacktest(start_request(days=days, **kw))).backtest_id
        events = await asyncio.wait_for(collect(stub, bid), 60)
        bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
        folder = eng.store.backtest_dir(bid)
    assert kinds(events)[-1] == "backtest_completed"
    return bid, events, day_files(folder), bt, folder


async def _check_agreement(stub, store, bid) -> list[pb.BacktestEvent]:
    """The stream ends with a terminal event; index, progress, daily summaries, visible days and
    the log agree."""
    events = await asyncio.wait_for(collect(stub, bid), 60)
    assert kinds(events)[-1] in ("backtest_completed", "backtest_failed", "backtest_cancelled")
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
    assert bt.last_event_id == events[-1].event_id
    done = [e.day_completed.date for e in events if e.HasField("day_completed")]
    assert bt.progress.completed_days == len(done) == len(bt.daily_summaries)
    assert [d.date for d in bt.daily_summaries] == done
    assert store.list_days(bid) == done
    # Streaming from the reported last id ends at once (no OUT_OF_RANGE, no hang).
    assert await asyncio.wait_for(collect(stub, bid, after=bt.last_event_id), 10) == []
    return events


@pytest.mark.parametrize("damage", ["cut-terminal", "flip-terminal", "cut-days"])
async def test_finished_run_whose_log_lost_its_end_is_repaired(settings, damage):
    bid, events, files, bt, folder = await _finished_run(settings)
    path = folder / LOG_NAME
    payloads = frames(path)
    if damage == "cut-terminal":
        write_frames(path, payloads[:-1], tail=_FRAME.pack(len(payloads[-1]), 0) + payloads[-1][:7])
    elif damage == "flip-terminal":
        raw = bytearray(path.read_bytes())
        raw[-3] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:  # a day and a half lost
        last_days = [i for i, e in enumerate(events) if e.HasField("day_completed")][-2:]
        write_frames(path, payloads[:last_days[0] - 2], tail=b"\x00" * 100)
    async with serving(settings) as (eng, stub):
        # A client that had seen the whole run asks for what follows the last id it knew.
        if damage != "cut-days":
            assert await asyncio.wait_for(collect(stub, bid, after=bt.last_event_id), 10) == []
        repaired = await _check_agreement(stub, eng.store, bid)
        again = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
        if damage == "cut-days":
            failed = repaired[-1].backtest_failed
            assert failed.error_code == "LOG_REPAIRED" and again.status == pb.BACKTEST_STATUS_FAILED
            assert again.progress.completed_days == bt.progress.completed_days - 2
            lost = bt.daily_summaries[-1].date
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date=lost))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
        else:  # only the terminal event was lost: rebuilt from metadata.json
            assert kinds(repaired)[-1] == "backtest_completed" and len(repaired) == len(events)
            assert again.status == pb.BACKTEST_STATUS_COMPLETED
            assert repaired[-1].backtest_completed.overall_summary == events[-1].backtest_completed.overall_summary
            assert day_files(folder) == files
    # Repaired once: the next engine finds nothing to do.
    async with serving(settings) as (eng, stub):
        assert [e.SerializeToString() for e in await _check_agreement(stub, eng.store, bid)] == \
            [e.SerializeToString() for e in repaired]


def _as_crashed(settings, bid: str, keep: int, *, checkpoint: dict | None = None, tail: bytes = b"",
                drop_files_after: str | None = None) -> list[bytes]:
    """Turn a finished run back into one an engine died in: index RUNNING, the log cut after
    `keep` events (+ a torn `tail`), metadata gone, a checkpoint if given. Returns the log's
    original records."""
    store = LocalStore(settings.store_root, fsync=False)
    try:
        folder = store.backtest_dir(bid)
        payloads = frames(folder / LOG_NAME)
        write_frames(folder / LOG_NAME, payloads[:keep], tail)
        (folder / "metadata.json").unlink()
        if checkpoint is not None:
            store.write_checkpoint(bid, checkpoint)
        if drop_files_after is not None:
            store.remove_days(bid, [d for d in store.list_days(bid) if d > drop_files_after])
        store.update(bid, status=RUNNING, finished_at=None, expires_at=None, completed_days=1,
                     error_code=None, summary_json=None)
    finally:
        store.close()
    return payloads


async def _run_with_checkpoints(settings, monkeypatch, days=SHORT, **kw):
    """_finished_run(), also returning every checkpoint the run wrote (one per day)."""
    from services.engine import checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_MIN_S", 0.0)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_EVERY_S", 0.0)
    written: list[dict] = []
    write = LocalStore.write_checkpoint

    def recording(self, backtest_id, doc):
        written.append(dict(doc))
        return write(self, backtest_id, doc)

    monkeypatch.setattr(LocalStore, "write_checkpoint", recording)
    out = await _finished_run(settings, days, **kw)
    monkeypatch.setattr(LocalStore, "write_checkpoint", write)
    assert written, "the run wrote no checkpoint"
    return (*out, written)


def _middle(checkpoints: list[dict], n_days: int) -> dict:
    """A checkpoint the run wrote with at least three days after it."""
    usable = [c for c in checkpoints if 1 <= c["day_number"] <= n_days - 3]
    assert usable, checkpoints
    return usable[len(usable) // 2]


@pytest.mark.parametrize("how", ["from-checkpoint-torn", "from-checkpoint-corrupt", "no-checkpoint"])
async def test_running_run_with_a_damaged_tail_continues(settings, monkeypatch, how):
    bid, events, files, bt, folder, checkpoints = await _run_with_checkpoints(settings, monkeypatch)
    original = frames(folder / LOG_NAME)
    day_ends = [e.event_id for e in events if e.HasField("day_completed")]
    if how == "no-checkpoint":
        ck, keep = None, day_ends[len(day_ends) // 2] + 3  # three events into a day
    else:
        ck = _middle(checkpoints, len(day_ends))
        keep = day_ends[ck["day_number"] + 1] + 2  # two days after the checkpoint, and a bit of a third
    tail = b""
    if how == "from-checkpoint-torn":
        tail = _FRAME.pack(len(original[keep]), checksum(original[keep])) + original[keep][:5]
    elif how == "from-checkpoint-corrupt":
        bad = bytearray(original[keep])
        bad[len(bad) // 2] ^= 0x55
        tail = _FRAME.pack(len(bad), checksum(original[keep])) + bytes(bad)
    # The torn case also lost the day files written after the checkpoint (as a power cut may).
    _as_crashed(settings, bid, keep, checkpoint=ck, tail=tail,
                drop_files_after=ck["date"] if how == "from-checkpoint-torn" else None)
    async with serving(settings) as (eng, stub):
        continued = await _check_agreement(stub, eng.store, bid)
        again = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
    assert kinds(continued)[-1] == "backtest_completed"
    final = frames(folder / LOG_NAME)
    assert final[:keep] == original[:keep]  # the events kept are the very same bytes
    assert ids_and_bodies(final)[1] == ids_and_bodies(original)[1]
    assert day_files(folder) == files
    assert summary_view(again) == summary_view(bt)


async def test_unusable_checkpoint_ends_the_run_with_backtest_failed(settings, monkeypatch):
    bid, events, files, bt, folder, checkpoints = await _run_with_checkpoints(settings, monkeypatch)
    day_ends = [e.event_id for e in events if e.HasField("day_completed")]
    ck = _middle(checkpoints, len(day_ends))
    keep = day_ends[ck["day_number"]] + 1  # the day after the checkpoint, and one event more
    # The recomputed state will not match (as if the dataset had changed under the run).
    _as_crashed(settings, bid, keep, checkpoint={**ck, "fingerprint": "0" * 64})
    async with serving(settings) as (eng, stub):
        ended = await _check_agreement(stub, eng.store, bid)
        again = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
    failed = ended[-1].backtest_failed
    assert failed.error_code == "CHECKPOINT_UNUSABLE" and "differs from its checkpoint" in failed.error_message
    assert again.status == pb.BACKTEST_STATUS_FAILED and again.error_code == "CHECKPOINT_UNUSABLE"
    # What the log held is kept as it was; nothing after it was published.
    assert [e.SerializeToString() for e in ended[:keep]] == [e.SerializeToString() for e in events[:keep]]
    assert len(ended) == keep + 1
    assert again.progress.completed_days == sum(1 for i in day_ends if i <= keep)


async def test_an_event_that_differs_from_its_recomputation_fails_the_run(settings, monkeypatch):
    bid, events, files, bt, folder, checkpoints = await _run_with_checkpoints(settings, monkeypatch)
    original = frames(folder / LOG_NAME)
    day_ends = [e.event_id for e in events if e.HasField("day_completed")]
    keep = day_ends[3]
    tampered = pb.BacktestEvent.FromString(original[keep - 1])
    tampered.day_completed.equity = "1.00"  # day 4's equity, as if the data had changed
    store = LocalStore(settings.store_root, fsync=False)
    try:
        write_frames(folder / LOG_NAME, original[:keep - 1] + [tampered.SerializeToString()])
        store.update(bid, status=RUNNING, finished_at=None, expires_at=None)
        store.remove_checkpoint(bid)
    finally:
        store.close()
    async with serving(settings) as (eng, stub):
        ended = await _check_agreement(stub, eng.store, bid)
    assert ended[-1].backtest_failed.error_code == "CHECKPOINT_UNUSABLE"
    assert f"event {keep} in the log" in ended[-1].backtest_failed.error_message
    assert len(ended) == keep + 1


async def test_queued_runs_start_again_and_uncompilable_ones_fail(settings):
    bid, events, files, bt, folder = await _finished_run(settings)
    store = LocalStore(settings.store_root, fsync=False)
    try:
        rec = store.get(bid)
        config = pb.BacktestConfig()
        json_format.Parse(rec.config_json, config)
        broken = pb.BacktestConfig()
        broken.CopyFrom(config)
        broken.strategy.indicators[0].period = 0
        for new_id, cfg in (("bt_queued_ok", config), ("bt_queued_bad", broken)):
            store.create(BacktestRecord(
                backtest_id=new_id, strategy_id=rec.strategy_id, created_at=time.time(), status=QUEUED,
                caller=rec.caller, symbol=rec.symbol, start_date=rec.start_date, end_date=rec.end_date,
                total_days=rec.total_days,
                config_json=json_format.MessageToJson(cfg, preserving_proto_field_name=True, indent=None)))
    finally:
        store.close()
    async with serving(settings) as (eng, stub):
        ok = await _check_agreement(stub, eng.store, "bt_queued_ok")
        bad = await _check_agreement(stub, eng.store, "bt_queued_bad")
        assert eng.store.get("bt_queued_ok").status == COMPLETED
    assert comparable(ids_and_bodies([e.SerializeToString() for e in ok])[1]) == \
        comparable(ids_and_bodies([e.SerializeToString() for e in events])[1])
    assert kinds(bad) == ["backtest_failed"]
    assert bad[0].backtest_failed.error_code == "CHECKPOINT_UNUSABLE"
    assert "no longer compiles" in bad[0].backtest_failed.error_message


async def test_days_written_but_never_announced_are_not_served(settings):
    bid, events, files, bt, folder = await _finished_run(settings)
    store = LocalStore(settings.store_root, fsync=False)
    try:
        # As if the engine had written a day's files and died before its events.
        store.write_day(bid, "2024-03-01", {"date": "2024-03-01", "trades": []}, {"events_history": {}})
    finally:
        store.close()
    async with serving(settings) as (eng, stub):
        assert "2024-03-01" not in eng.jobs.visible_days(bid)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetDay(pb.GetDayRequest(backtest_id=bid, date="2024-03-01"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert eng.jobs.visible_days(bid) == [d.date for d in bt.daily_summaries]


async def test_a_run_whose_end_reached_the_log_but_not_the_index_is_closed_from_its_log(settings):
    bid, events, files, bt, folder = await _finished_run(settings)
    store = LocalStore(settings.store_root, fsync=False)
    try:  # the engine died between appending backtest_completed and updating the index
        (folder / "metadata.json").unlink()
        store.update(bid, status=RUNNING, finished_at=None, expires_at=None, completed_days=3, summary_json=None)
    finally:
        store.close()
    async with serving(settings) as (eng, stub):
        again = await _check_agreement(stub, eng.store, bid)
        view = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
        meta = eng.store.read_metadata(bid)
    assert [e.SerializeToString() for e in again] == [e.SerializeToString() for e in events]
    assert view.status == pb.BACKTEST_STATUS_COMPLETED
    assert summary_view(view)["daily"] == summary_view(bt)["daily"]
    assert view.summary == bt.summary and meta["status"] == "completed"
    assert day_files(folder) == files


def test_split_stamp_and_body_kind_read_logged_events():
    msg = pb.BacktestEvent(event_id=300, backtest_id="bt_x", day_started=pb.DayStarted(date="2024-01-02"))
    msg.emitted_at.FromSeconds(1_700_000_000)
    body = pb.BacktestEvent(day_started=pb.DayStarted(date="2024-01-02")).SerializeToString()
    assert ev.split_stamp(msg.SerializeToString()) == (300, body)
    assert ev.body_kind(body) == "day_started" and ev.body_kind(b"") == ""
    bare = pb.BacktestEvent(event_id=1, backtest_started=pb.BacktestStarted()).SerializeToString()
    assert ev.split_stamp(bare)[0] == 1 and ev.body_kind(ev.split_stamp(bare)[1]) == "backtest_started"


async def test_a_graceful_stop_leaves_runs_to_the_next_engine(settings):
    """Stopping the engine (SIGTERM) stops a running run at a day boundary and keeps a queued
    one queued; the next engine continues and starts them, ids contiguous, results equal."""
    from dataclasses import replace

    one = replace(settings, max_concurrent=1)
    days = ("2023-01-01", "2024-12-31")
    ref_bid, ref_events, ref_files, ref_bt, _ = await _finished_run(one, days=days, name="sma_cross.json")
    async with serving(one) as (eng, stub):
        running = (await stub.StartBacktest(start_request(days=days, name="sma_cross.json"))).backtest_id
        queued = (await stub.StartBacktest(start_request(days=days, name="sma_cross.json"))).backtest_id
        seen = []
        async for e in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=running)):
            seen.append(e)
            if len(seen) >= 300:
                break
    from storage import LocalStore

    with LocalStore(one.store_root) as store:
        assert store.get(running).status == "running" and store.get(queued).status == "queued"
        stopped_at = store.event_log(running).last_id
    assert 300 <= stopped_at < ref_bt.last_event_id
    async with serving(one) as (eng, stub):
        for bid in (running, queued):
            events = await _check_agreement(stub, eng.store, bid)
            assert kinds(events)[-1] == "backtest_completed"
            assert [e.event_id for e in events[:300]] == [e.event_id for e in seen]
            assert comparable([strip(e) for e in events]) == comparable([strip(e) for e in ref_events])
            bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
            assert summary_view(bt) == summary_view(ref_bt)
            assert day_files(eng.store.backtest_dir(bid)) == ref_files


def strip(event: pb.BacktestEvent) -> bytes:
    """An event's body: without its id, backtest id and time."""
    e = pb.BacktestEvent()
    e.CopyFrom(event)
    e.ClearField("event_id")
    e.ClearField("backtest_id")
    e.ClearField("emitted_at")
    return e.SerializeToString(deterministic=True)


async def test_a_cancel_just_before_a_crash_is_not_lost(settings):
    """A cancel acknowledged to the caller is on disk: an engine that dies before the run stops
    leaves it to the next engine, which ends it as cancelled rather than continuing it."""
    from storage import LocalStore

    async with serving(settings) as (eng, stub):
        bid = (await stub.StartBacktest(start_request(days=("2016-01-01", "2025-12-31"),
                                                      name="sma_cross.json"))).backtest_id
        async for _ in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=bid)):
            break
        # As if the engine died right after acknowledging the cancel: the request is recorded,
        # the run never got to stop.
        eng.store.write_cancel_request(bid, "cancelled by request")
    with LocalStore(settings.store_root) as store:
        assert store.get(bid).status == "running"  # (the graceful stop left it running)
        assert store.read_cancel_request(bid) == "cancelled by request"
    async with serving(settings) as (eng, stub):
        events = await _check_agreement(stub, eng.store, bid)
        assert kinds(events)[-1] == "backtest_cancelled"
        assert events[-1].backtest_cancelled.reason == "cancelled by request"
        bt = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid))
        assert bt.status == pb.BACKTEST_STATUS_CANCELLED


async def test_cancel_records_the_request_durably(settings):
    async with serving(settings) as (eng, stub):
        bid = (await stub.StartBacktest(start_request(days=("2016-01-01", "2025-12-31"),
                                                      name="sma_cross.json"))).backtest_id
        async for _ in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=bid)):
            break
        got = await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=bid))
        assert got.status == pb.BACKTEST_STATUS_CANCELLED
        assert eng.store.read_cancel_request(bid) == "cancelled by request"
