"""DatasetService over grpc.aio (datasets.proto): uploads (client streams), get, delete.

An upload's chunks are appended to a temp file inside the owner's datasets folder as they arrive,
while an ingest thread parses, checks and stores what has arrived (ingest.py); the event loop only
counts bytes, checks limits and writes. Whatever ends an upload early (a limit, a bad message, the
client leaving) aborts the thread, which removes the temp folder: nothing is left. Errors are
statuses with google.rpc details, as BacktestService's: field violations for INVALID_ARGUMENT (an
upload refused for its data also carries its whole QualityReport), ErrorInfo for RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from hindsight.v1 import datasets_pb2 as dpb
from hindsight.v1 import datasets_pb2_grpc as dpb_grpc

from services.engine.core.catalog import SYMBOL
from services.engine.core.data import DataError
from services.engine.core.spec import Problem
from services.engine.quotas import QuotaExceeded, mib
from services.engine.servicer import RpcError, _handler, exhausted, invalid, not_found

from .ingest import IngestOptions, OptionError, ingest, release_memory, resolve_zone
from .listing import detail
from .source import GrowingFile, NotTabular, TruncatedGzip, check_text, sniff_format
from .store import Clash, Uploads, folder_bytes

SERVICE_NAME = "hindsight.v1.DatasetService"

log = logging.getLogger(__name__)

# The format is read from the bytes, so a type only has to not contradict a file: text/plain is
# what many tools call a CSV, and application/x-www-form-urlencoded is what `curl --data-binary`
# sends unless told otherwise (a real form's body is no CSV and fails as one).
CONTENT_TYPES = frozenset({"", "text/csv", "application/csv", "text/plain", "application/gzip", "application/x-gzip",
                           "application/vnd.apache.parquet", "application/x-parquet", "application/octet-stream",
                           "application/x-www-form-urlencoded"})
DEFAULT_PREVIEW, MAX_PREVIEW = 5, 100
MAX_DESCRIPTION = 2000
INGEST_THREADS = 2
CLEANUP_WAIT_S = 10.0  # a refused upload's answer waits this long at most for its temp folder to go
_META_FIELDS = ("symbol", "timezone", "calendar", "timeframe", "description", "format")
_CHAIN_EXT = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}
_SEND_FILE = ("send the file itself as the body: curl --data-binary @f.csv -H 'Content-Type: text/csv' ... "
              "(or application/gzip, application/vnd.apache.parquet, application/octet-stream)")


def _bad(field: str, description: str) -> RpcError:
    return invalid([Problem(field, description)])


def too_large(limit: int) -> RpcError:
    info = error_details_pb2.ErrorInfo(reason="UPLOAD_TOO_LARGE", domain="hindsight",
                                       metadata={"limit_bytes": str(limit)})
    return RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the upload is larger than the limit of {mib(limit)} (HINDSIGHT_MAX_UPLOAD_MB): compress it "
                    "(CSV.gz or Parquet) or split it by date into several datasets", [info])


def refused(report: dpb.QualityReport, violations: list[tuple[str, str]]) -> RpcError:
    """INVALID_ARGUMENT for an upload with ERROR findings: one violation per error (field "chunk"),
    and the whole report as a detail of its own."""
    br = error_details_pb2.BadRequest()
    for field, description in violations:
        br.field_violations.add(field=field, description=description)
    first = violations[0][1]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"chunk: {first}{more}", [br, report])


def _content_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class DatasetServicer(dpb_grpc.DatasetServiceServicer):
    def __init__(self, backtests):
        """`backtests`: the BacktestServicer, whose store, catalog, jobs, settings, auth and quotas are shared."""
        self.backtests = backtests
        self.catalog, self.settings, self.quotas = backtests.catalog, backtests.settings, backtests.quotas
        self.uploads = Uploads(self.catalog)
        self.uploads.sweep_all()  # what uploads cut short by a crash left behind
        self.quotas.dataset_bytes = self.uploads.stored_bytes
        self._pool = ThreadPoolExecutor(max_workers=INGEST_THREADS, thread_name_prefix="ingest")

    async def principal(self, context):
        return await self.backtests.principal(context)

    # --- receiving ---------------------------------------------------------------------------
    def _quota_left(self, user: str) -> int | None:
        """Bytes `user` may still store (None: unlimited); RESOURCE_EXHAUSTED when none."""
        limit = self.settings.max_stored_bytes_per_user
        if not limit:
            return None
        used = self.quotas.stored_bytes(user)
        if used >= limit:
            raise exhausted(QuotaExceeded("stored_bytes", f"your backtests and datasets take {mib(used)} of your "
                                          f"{mib(limit)}: delete some (DeleteBacktest, DeleteDataset) first"))
        return limit - used

    def _over_quota(self, user: str, adding: int) -> RpcError:
        limit = self.settings.max_stored_bytes_per_user
        return exhausted(QuotaExceeded("stored_bytes", f"this upload would take {mib(adding)} more; with what you "
                                       f"store it is over your {mib(limit)}: delete some backtests or datasets "
                                       "(DeleteBacktest, DeleteDataset) first"))

    @staticmethod
    def _check_message(msg, index: int, fields: tuple[str, ...]) -> None:
        if index:
            for name in fields:
                if getattr(msg, name):
                    raise _bad(name, f"only the first message of an upload may carry {name} (message {index + 1} "
                                     "does): send the metadata once, then only chunk")
        if msg.HasField("chunk") and _content_type(msg.chunk.content_type) not in CONTENT_TYPES:
            ct = msg.chunk.content_type[:80]
            hint = " (a form upload, curl -F, wraps the file in a form)" if "multipart" in ct else ""
            raise _bad("chunk.content_type", f"'{ct}' is not a file of bars{hint}: {_SEND_FILE}")

    async def _receive(self, first, requests, growing: GrowingFile, fields: tuple[str, ...], quota: int | None,
                       job: asyncio.Future | None = None) -> int:
        """Append every message's chunk to `growing` (the first message's too); the bytes received.
        Stops early when the ingest `job` has ended (it failed: the caller raises its error)."""
        limit = self.settings.max_upload_bytes
        msg, index, total = first, 0, 0
        while msg is not None:
            if job is not None and job.done():
                return total
            self._check_message(msg, index, fields)
            data = msg.chunk.data
            total += len(data)
            if limit and total > limit:
                raise too_large(limit)
            if quota is not None and total > quota:
                raise self._over_quota_stream(quota)
            growing.append(data)
            index += 1
            msg = await anext(requests, None)
        return total

    def _over_quota_stream(self, quota: int) -> RpcError:
        return exhausted(QuotaExceeded("stored_bytes", f"the upload is larger than the {mib(quota)} left of your "
                                       f"stored-bytes quota ({mib(self.settings.max_stored_bytes_per_user)}): delete "
                                       "some backtests or datasets (DeleteBacktest, DeleteDataset) first"))

    # --- UploadDataset -------------------------------------------------------------------------
    @_handler
    async def UploadDataset(self, requests, context, me) -> dpb.DatasetDetail:
        first = await anext(requests, None)
        if first is None:
            raise _bad("symbol", "the upload has no message: the first names the dataset (symbol) and carries "
                                 "the file's first chunk")
        opts = await asyncio.to_thread(self._options, first, me.user_id)
        quota = await asyncio.to_thread(self._quota_left, me.user_id)
        tmp = await asyncio.to_thread(self.uploads.temp, me.user_id)
        growing = GrowingFile(tmp / "received")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._pool, self._ingest_job, growing, opts, tmp, me.user_id, quota)
        try:
            await self._receive(first, requests, growing, _META_FIELDS, quota, job)
            growing.finish()
            return await asyncio.shield(job)
        except BaseException as exc:
            growing.abort()  # the job stops, removes `tmp` and ends; nothing is kept
            if not isinstance(exc, asyncio.CancelledError):
                # Answer once it has: a refused upload leaves nothing on disk when the error
                # arrives (CI saw a temp folder still there right after a quota refusal).
                try:
                    await asyncio.wait_for(asyncio.shield(job), timeout=CLEANUP_WAIT_S)
                except BaseException:  # noqa: BLE001 - its own failure or the wait: the refusal stands
                    pass
            if job.done() and not job.cancelled():
                job.exception()  # retrieved: a failure after the abort is not worth a warning
            else:
                job.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    def _options(self, first, user: str) -> IngestOptions:
        symbol = first.symbol
        if not symbol:
            raise _bad("symbol", "missing symbol: name the new dataset, e.g. MYNIFTY (1-40 letters, digits, '.', "
                                 "'_' or '-')")
        if not SYMBOL.match(symbol):
            raise _bad("symbol", f"'{symbol[:60]}' is not a valid symbol: use 1-40 letters, digits, '.', '_' or "
                                 "'-', starting with a letter or digit")
        if len(first.description) > MAX_DESCRIPTION:
            raise _bad("description", f"at most {MAX_DESCRIPTION} characters, got {len(first.description)}")
        opts = IngestOptions(symbol=symbol, timezone=first.timezone, calendar=first.calendar,
                             timeframe=first.timeframe, description=first.description, format=first.format,
                             owner=user)
        try:
            resolve_zone(opts)
        except OptionError as exc:
            raise _bad(exc.field, exc.text) from None
        self._check_free(user, symbol)
        return opts

    def _check_free(self, user: str, symbol: str) -> None:
        taken = self.uploads.clash(user, symbol, self.catalog._sources())
        if taken is not None:
            raise self._exists(taken)

    @staticmethod
    def _exists(clash: Clash) -> RpcError:
        whose = "a built-in or server dataset" if clash.shared else "one of your datasets"
        info = error_details_pb2.ResourceInfo(resource_type="dataset", resource_name=clash.symbol,
                                              description=f"{whose} is '{clash.existing}'")
        return RpcError(grpc.StatusCode.ALREADY_EXISTS,
                        f"dataset '{clash.symbol}' already exists ({whose} is '{clash.existing}'; symbols are "
                        "compared without case): choose another symbol, or delete yours first (DeleteDataset)", [info])

    def _ingest_job(self, growing: GrowingFile, opts: IngestOptions, tmp: Path, user: str,
                    quota: int | None) -> dpb.DatasetDetail:
        """The ingest thread: parse as the bytes arrive, check, store, commit. Always leaves `tmp` gone."""
        started = time.perf_counter()
        try:
            build = tmp / "build"
            build.mkdir()
            try:
                result = ingest(growing, opts, build, fsync=self.settings.fsync, check=growing.check,
                                upload_bytes=lambda: growing.size)
            except NotTabular as exc:
                raise _bad("chunk", f"the upload is not a CSV or Parquet file: {exc} (CSV, CSV.gz or Parquet of "
                                    "bars: timestamp, open, high, low, close, volume)") from None
            except TruncatedGzip as exc:
                raise _bad("chunk", f"{exc}: send the whole file") from None
            except OptionError as exc:
                raise _bad(exc.field, exc.text) from None
            report = result.report
            if not result.stored:
                errors = [f for f in report.findings if f.severity == dpb.QUALITY_SEVERITY_ERROR]
                raise refused(report, [("chunk", f"{f.message} ({f.check}): {f.fix}") for f in errors])
            growing.close()
            (tmp / "received").unlink(missing_ok=True)
            stored = folder_bytes(build)
            if quota is not None and stored > quota:
                raise self._over_quota(user, stored)
            growing.check()  # the client left while the file was being checked: keep nothing
            try:
                self.uploads.commit(user, opts.symbol, build, self.catalog._sources())
            except Clash as clash:
                raise self._exists(clash) from None
            log.info("dataset %s of %s stored: %d bars, score %.1f, %.2fs (%s)", opts.symbol, user,
                     result.meta["bars"], report.score, time.perf_counter() - started,
                     ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
            return detail(self.catalog.scoped(user), opts.symbol, DEFAULT_PREVIEW)
        finally:
            growing.close()
            shutil.rmtree(tmp, ignore_errors=True)

    # --- GetDataset / DeleteDataset ----------------------------------------------------------------
    @_handler
    async def GetDataset(self, request: dpb.GetDatasetRequest, context, me) -> dpb.DatasetDetail:
        preview = request.preview_rows or DEFAULT_PREVIEW
        if not 0 < preview <= MAX_PREVIEW:
            raise _bad("preview_rows", f"{request.preview_rows}: use 1 to {MAX_PREVIEW} (0: {DEFAULT_PREVIEW})")
        scoped = self.catalog.scoped(me.user_id)

        def get() -> dpb.DatasetDetail:
            if not request.symbol or not scoped.has(request.symbol):
                raise not_found("dataset", request.symbol)
            try:
                return detail(scoped, request.symbol, preview)
            except (KeyError, DataError, OSError) as exc:  # deleted meanwhile, or unreadable
                if not scoped.has(request.symbol):
                    raise not_found("dataset", request.symbol) from None
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"dataset {request.symbol} cannot be read: "
                                                                    f"{exc}") from None

        return await asyncio.to_thread(get)

    @_handler
    async def DeleteDataset(self, request: dpb.DeleteDatasetRequest, context, me) -> dpb.DeleteDatasetResponse:
        symbol = request.symbol

        def delete() -> None:
            if symbol and self.uploads.delete(me.user_id, symbol):
                return
            if symbol and self.catalog.has(symbol):
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"dataset '{symbol}' is a built-in or server dataset, not an upload of yours: it "
                               "cannot be deleted through the API (a server dataset is a file in the engine's "
                               "datasets folder)")
            raise not_found("dataset", symbol)

        await asyncio.to_thread(delete)
        return dpb.DeleteDatasetResponse(symbol=symbol)

    # --- UploadOptionChain ---------------------------------------------------------------------
    @_handler
    async def UploadOptionChain(self, requests, context, me) -> dpb.DatasetDetail:
        first = await anext(requests, None)
        if first is None or not first.symbol:
            raise _bad("symbol", "missing symbol: the first message names one of your datasets")
        symbol = first.symbol
        if first.format and first.format not in _CHAIN_EXT:
            raise _bad("format", f"unknown format '{first.format[:40]}': use csv, csv.gz or parquet (or leave it "
                                 "empty: the format is read from the content)")
        folder = await asyncio.to_thread(self.uploads.dataset, me.user_id, symbol)
        if folder is None:
            if await asyncio.to_thread(self.catalog.has, symbol):
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"dataset '{symbol}' is a built-in or server dataset: its option chain is a file "
                               f"beside it in the engine's datasets folder ({symbol}.options.parquet); upload "
                               "chains for your own datasets")
            raise not_found("dataset", symbol)
        quota = await asyncio.to_thread(self._quota_left, me.user_id)
        tmp = await asyncio.to_thread(self.uploads.temp, me.user_id)
        growing = GrowingFile(tmp / "received")
        committed = False
        try:
            await self._receive(first, requests, growing, ("symbol", "format"), quota)
            growing.finish()
            growing.close()
            result = await asyncio.to_thread(self._chain_job, tmp, me.user_id, symbol, first.format, quota)
            committed = True
            return result
        finally:
            growing.abort()
            growing.close()
            if not committed:
                await asyncio.to_thread(shutil.rmtree, tmp, True)

    def _chain_job(self, tmp: Path, user: str, symbol: str, declared: str, quota: int | None) -> dpb.DatasetDetail:
        from services.engine.options.chain import chain_cache

        try:
            received = tmp / "received"
            with open(received, "rb") as fh:
                head = fh.read(1 << 16)
            fmt = sniff_format(head, declared)
            if fmt == "csv":
                try:
                    check_text(head)
                except NotTabular as exc:
                    raise _bad("chunk", f"the upload is not a CSV or Parquet file: {exc}") from None
            source = tmp / f"{symbol}.options{_CHAIN_EXT[fmt]}"
            received.rename(source)
            scoped = self.catalog.scoped(user)
            tz = scoped.info(symbol).timezone
            try:
                cache = chain_cache(source, tz, cache_dir=tmp)
            except DataError as exc:
                raise _bad("chunk", str(exc)) from None
            except (OSError, ValueError, EOFError) as exc:
                raise _bad("chunk", f"the option chain cannot be read ({exc}): send a whole CSV, CSV.gz or Parquet "
                                    "file") from None
            adding = source.stat().st_size + cache.stat().st_size
            if quota is not None and adding > quota:
                raise self._over_quota(user, adding)
            self._commit_chain(user, symbol, source, cache)
            return detail(scoped, symbol, DEFAULT_PREVIEW)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            release_memory()

    def _commit_chain(self, user: str, symbol: str, source: Path, cache: Path) -> None:
        """Replace the dataset's chain: the old source and caches go, the new ones move in (same
        names, sizes and mtimes: the cache's key still matches)."""
        with self.uploads._lock:
            folder = self.uploads.dataset(user, symbol)
            if folder is None:
                raise not_found("dataset", symbol)
            for old in folder.iterdir():
                if old.name.startswith(f"{symbol}.options") or old.name.startswith("options-"):
                    old.unlink(missing_ok=True)
            cache.rename(folder / cache.name)
            source.rename(folder / source.name)
