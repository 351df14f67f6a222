"""Datasets as messages: `Dataset` (ListDatasets, GetDataset), the preview rows as `Candle`s, and an
upload's stored quality report. Blocking (reads the catalog): call off the event loop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from google.protobuf import json_format
from hindsight.v1 import backtest_service_pb2 as pb
from hindsight.v1 import datasets_pb2 as dpb
from hindsight.v1 import results_pb2

from ..core.catalog import DatasetInfo, ScopedCatalog

__all__ = ["dataset_message", "dataset_messages", "detail", "options_of"]

log = logging.getLogger(__name__)


def options_of(catalog: ScopedCatalog, symbol: str) -> str:
    """Dataset.options: "synthetic", "chain" or ""."""
    from services.engine.options.runner import source_for

    try:
        source = source_for(catalog, symbol)
    except (ValueError, OSError):  # e.g. two chain files for one dataset
        return ""
    return source.kind if source else ""


def dataset_message(info: DatasetInfo, options: str) -> pb.Dataset:
    msg = pb.Dataset(symbol=info.symbol, description=info.description, timeframe=info.timeframe,
                     first_date=str(info.first_date), last_date=str(info.last_date), bars=info.bars,
                     timezone=info.timezone, calendar=info.calendar, options=options, source=info.source,
                     owner=info.owner, quality_score=info.quality_score, stored_bytes=info.stored_bytes)
    if info.created_at:
        msg.created_at.FromNanoseconds(int(info.created_at * 1e9))
    return msg


def dataset_messages(catalog: ScopedCatalog) -> list[pb.Dataset]:
    """ListDatasets: the caller's uploads, then the built-in and server datasets."""
    return [dataset_message(d, options_of(catalog, d.symbol)) for d in catalog.list()]


def _candles(ts: np.ndarray, cols: dict, tz: str) -> list[results_pb2.Candle]:
    stamps = pd.DatetimeIndex(np.asarray(ts, dtype=np.int64).view("M8[ns]")).tz_localize("UTC").tz_convert(tz)
    return [results_pb2.Candle(timestamp=stamp.isoformat(), open=float(o), high=float(h), low=float(lo),
                               close=float(c), volume=float(v))
            for stamp, o, h, lo, c, v in zip(stamps, cols["open"], cols["high"], cols["low"], cols["close"],
                                             cols["volume"])]


def quality_of(folder: Path | None) -> dpb.QualityReport | None:
    if folder is None:
        return None
    try:
        doc = json.loads((folder / "quality.json").read_text())
    except (OSError, ValueError):
        return None
    return json_format.ParseDict(doc, dpb.QualityReport(), ignore_unknown_fields=True)


def detail(catalog: ScopedCatalog, symbol: str, preview: int) -> dpb.DatasetDetail:
    """GetDataset's answer (and an upload's): the Dataset, the quality report of an upload, and the
    first and last `preview` rows as stored."""
    info = catalog.info(symbol)
    opened = catalog._opened(symbol)
    out = dpb.DatasetDetail(dataset=dataset_message(info, options_of(catalog, symbol)))
    if info.source == "upload":
        report = quality_of(catalog.upload_folder(symbol))
        if report is not None:
            out.quality.CopyFrom(report)
    n = len(opened.columns["ts"])
    k = min(preview, n)
    if k:
        names = ("ts", "open", "high", "low", "close", "volume")
        head = {name: np.asarray(opened.columns[name][:k]) for name in names}
        tail = {name: np.asarray(opened.columns[name][n - k:]) for name in names}
        out.head.extend(_candles(head["ts"], head, info.timezone))
        out.tail.extend(_candles(tail["ts"], tail, info.timezone))
    return out
