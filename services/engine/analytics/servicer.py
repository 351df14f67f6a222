"""AnalyticsService over grpc.aio (analytics.proto): a finished run's analytics, and runs compared.

Only translation lives here: requests are checked, every backtest goes through the backtest
servicer's isolation gate (`_record`: another user's run is NOT_FOUND exactly like a missing
one), the work runs off the event loop. GetAnalytics answers bytes (server.py passes them
through): the answer kept in the run's folder (see cache.py), or one computed from the run's
table (load.py, build.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from google.rpc import error_details_pb2

from hindsight.v1 import analytics_pb2 as apb
from hindsight.v1 import analytics_pb2_grpc as apb_grpc

from services.engine.core.spec import Problem
from services.engine.requests import MAX_ECHOED_ID
from services.engine.servicer import RpcError, _handler, invalid, not_found
from storage import TERMINAL_STATUSES, NotFound

from . import build
from .cache import MemoryCache, answer_lock, answer_name, read_answer, write_answer
from .encode import CACHED_TRUE
from .load import ResultsUnavailable, daily_table, ensure_table

SERVICE_NAME = "hindsight.v1.AnalyticsService"
log = logging.getLogger("hindsight.engine.analytics")

WINDOW_RANGE = (2, 1000)
BINS_RANGE = (5, 500)
COMPARE_RANGE = (2, 5)
END_WAIT_S = 10.0  # the longest a call waits for a run's end to be written


def _precondition(bid: str, message: str, kind: str = "STATUS") -> RpcError:
    failure = error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
        type=kind, subject=f"backtests/{bid}", description=message)])
    return RpcError(grpc.StatusCode.FAILED_PRECONDITION, message, [failure])


def _echo(ident: str) -> str:
    return ident if len(ident) <= MAX_ECHOED_ID else ident[:MAX_ECHOED_ID] + "…"


def _no_days(bid: str) -> RpcError:
    return _precondition(bid, f"backtest '{bid}' has no completed day: there is nothing to analyse", "NO_DAYS")


class AnalyticsServicer(apb_grpc.AnalyticsServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose store, catalog, jobs, settings, auth and quotas are shared."""
        self.backtests = backtests
        self.memory = MemoryCache()

    async def principal(self, context):
        return await self.backtests.principal(context)

    # --- the gate --------------------------------------------------------------------------
    async def _finished(self, bid: str, me):
        """The caller's run, ended with at least one completed day; NOT_FOUND (as for a missing
        id) or FAILED_PRECONDITION otherwise. A run whose terminal event is out but whose end is
        still being written (metadata, index) is waited for."""
        rec = self.backtests._record(bid, me)
        jobs = self.backtests.jobs
        job = jobs.job(rec.backtest_id)
        if job is not None and job.terminal_id is None and job.status in TERMINAL_STATUSES:
            if not await asyncio.to_thread(jobs.wait, rec.backtest_id, END_WAIT_S):
                raise _precondition(bid, f"backtest '{bid}' is ending ({job.status}): retry in a moment")
        if job is not None and job.terminal_id is None:
            raise _precondition(bid, f"backtest '{bid}' is still {job.status}: analytics are computed once it "
                                     f"has ended (or cancel it to analyse the days it completed)")
        rec = self.backtests._record(bid, me)  # the row as the run's end left it
        if rec.status not in TERMINAL_STATUSES:
            raise _precondition(bid, f"backtest '{bid}' is still {rec.status}: analytics are computed once it "
                                     f"has ended (or cancel it to analyse the days it completed)")
        if not rec.completed_days:
            raise _no_days(bid)
        return rec

    # --- GetAnalytics ----------------------------------------------------------------------
    @_handler
    async def GetAnalytics(self, request: apb.GetAnalyticsRequest, context, me) -> bytes:
        problems = []
        window = request.rolling_window_days or build.DEFAULT_WINDOW
        bins = request.histogram_bins or build.DEFAULT_BINS
        if not request.backtest_id:
            problems.append(Problem("backtest_id", "required: the id of one of your backtests"))
        (w0, w1), (b0, b1) = WINDOW_RANGE, BINS_RANGE
        if not w0 <= window <= w1:
            problems.append(Problem("rolling_window_days", f"{window} is out of range: use {w0}-{w1} trading days "
                                                           f"(0: {build.DEFAULT_WINDOW})"))
        if not b0 <= bins <= b1:
            problems.append(Problem("histogram_bins", f"{bins} is out of range: use {b0}-{b1} bins "
                                                      f"(0: {build.DEFAULT_BINS})"))
        if problems:
            raise invalid(problems)
        rec = await self._finished(request.backtest_id, me)
        key = (rec.backtest_id, rec.last_event_id, window, bins)
        hit = self.memory.get(key)
        if hit is not None:
            return hit + CACHED_TRUE
        payload, cached = await asyncio.to_thread(self._answer, rec.backtest_id, window, bins)
        self.memory.put(key, payload)
        return payload + CACHED_TRUE if cached else payload

    def _answer(self, bid: str, window: int, bins: int) -> tuple[bytes, bool]:
        """(serialized Analytics, whether it came from the run's folder). On a worker thread."""
        name = answer_name(window, bins)
        payload = read_answer(self.backtests.store, bid, name)
        if payload is not None:
            return payload, True
        with answer_lock(bid, name):
            payload = read_answer(self.backtests.store, bid, name)  # computed while this call waited
            if payload is not None:
                return payload, True
            return self._compute(bid, window, bins, name), False

    def _compute(self, bid: str, window: int, bins: int, name: str) -> bytes:
        store = self.backtests.store
        t0 = time.perf_counter()
        try:
            table, built = ensure_table(store, bid)
        except (ResultsUnavailable, NotFound) as exc:
            if store.get(bid) is None:  # deleted meanwhile
                raise not_found("backtest", bid) from None
            raise _precondition(bid, f"the results of backtest '{bid}' cannot be read: {exc}", "RESULTS") from None
        if not len(table.days):
            raise _no_days(bid)
        t1 = time.perf_counter()
        timings: dict = {}
        payload = build.analytics_bytes(bid, table, window, bins, timings)
        t2 = time.perf_counter()
        write_answer(store, bid, name, payload)
        log.debug("analytics of %s: table %.1f ms (%s), figures %.1f ms, trade points %.1f ms, "
                  "written %.1f ms; %d trades, %d days, %d bytes", bid, (t1 - t0) * 1e3,
                  "built" if built else "read", timings["figures_s"] * 1e3, timings["trade_points_s"] * 1e3,
                  (time.perf_counter() - t2) * 1e3, timings["trades"], timings["days"], timings["bytes"])
        return payload

    # --- CompareBacktests ------------------------------------------------------------------
    @_handler
    async def CompareBacktests(self, request: apb.CompareBacktestsRequest, context, me) -> apb.Comparison:
        ids = list(request.backtest_ids)
        lo, hi = COMPARE_RANGE
        problems = []
        if not lo <= len(ids) <= hi:
            problems.append(Problem("backtest_ids", f"{len(ids)} ids given: compare {lo} to {hi} backtests"))
        seen: set[str] = set()
        duplicates = [i for i in ids if i in seen or seen.add(i)]
        if duplicates:
            names = ", ".join(f"'{_echo(d)}'" for d in dict.fromkeys(duplicates))
            problems.append(Problem("backtest_ids", f"{names} {'is' if len(set(duplicates)) == 1 else 'are'} given "
                                                    f"more than once: each backtest once"))
        problems += [Problem(f"backtest_ids[{k}]", "must not be empty") for k, i in enumerate(ids) if not i]
        if problems:
            raise invalid(problems)
        recs = [await self._finished(bid, me) for bid in ids]
        return await asyncio.to_thread(self._compare, recs)

    def _compare(self, recs) -> apb.Comparison:
        store = self.backtests.store
        runs = []
        for rec in recs:
            bid = rec.backtest_id
            try:
                table = daily_table(store, bid)
            except (ResultsUnavailable, NotFound) as exc:
                if store.get(bid) is None:
                    raise not_found("backtest", bid) from None
                raise _precondition(bid, f"the results of backtest '{bid}' cannot be read: {exc}",
                                    "RESULTS") from None
            if not len(table.days):
                raise _no_days(bid)
            runs.append((build.compared(bid, rec.strategy_id, rec.symbol, table), table))
        return build.comparison(runs)
