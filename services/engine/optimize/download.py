"""DownloadOptimization's ZIP, built from the optimization's event log while it is sent.

- `trials.csv`, `trials.parquet`: one row per trial: number, window, feasible, each parameter
  (`param_<name>`), each objective (`objective_<metric>`) and every Metrics field. The log is
  read page by page for each (a sweep may hold a million trials); the Parquet file is written
  in row groups to a temporary file, then sent.
- `top_strategies.json`: the best trials (a walk-forward: each window's winner) as complete
  strategies (StartBacktest with one reproduces its numbers), with parameters and metrics.
- `summary.json`: status, progress, top, Pareto front, overfitting, best strategy.
- `walk_forward.json`: the walk-forward report, when there is one.

NaN (an undefined objective, PBO with too few days) is an empty CSV cell, a Parquet null and
JSON null.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from hindsight.v1 import optimization_pb2 as opb
from hindsight.v1 import results_pb2, strategy_pb2

from services.engine.core.catalog import Catalog
from services.engine.core.spec import SpecError
from services.engine.optimize.jobs import read_pages
from services.engine.optimize.space import compile_space
from storage.archive import CHUNK_SIZE, _csv_blocks
from storage.optimizations import OptimizationRecord, OptimizationStore

ROW_GROUP = 50_000
_METRICS = [(f.name, f.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64))
            for f in results_pb2.Metrics.DESCRIPTOR.fields]
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)

Member = tuple[str, bool, Callable[[], Iterator[bytes]]]  # name, compressed, its blocks


def plain(message) -> dict[str, Any]:
    """A message as proto3 JSON (field names as declared) with its floating-point fields as
    numbers: json_format writes NaN as the string "NaN"; here it is a float (null in JSON)."""
    out = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True)
    _floats(message, out)
    return out


def _floats(message, out: dict[str, Any]) -> None:
    for fd, value in message.ListFields():
        if fd.type in _FLOATS:
            out[fd.name] = list(value) if fd.is_repeated else value
        elif (fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.message_type.full_name.startswith("google.protobuf.")
              and not fd.message_type.GetOptions().map_entry):
            if fd.is_repeated:
                for item, doc in zip(value, out[fd.name]):
                    _floats(item, doc)
            else:
                _floats(value, out[fd.name])


def _json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


class Columns:
    """The trial table's columns: names and Arrow types, from the config and the started event."""

    def __init__(self, config: opb.OptimizationConfig, started: opb.OptimizationStarted | None):
        names = list(started.parameters) if started is not None else [p.name for p in config.space.parameters]
        domains = {p.name: p for p in config.space.parameters}
        self.parameters = [(name, f"param_{name}", _parameter_type(domains.get(name))) for name in names]
        objectives = list(started.objectives) if started is not None else [
            f"{o.metric}:{o.direction or 'maximize'}" for o in config.objectives] or ["sharpe:maximize"]
        seen: set[str] = set()
        self.objectives = []
        for k, text in enumerate(objectives):
            column = f"objective_{text.split(':')[0]}"
            if column in seen:
                column = f"{column}_{k + 1}"
            seen.add(column)
            self.objectives.append(column)

    def schema(self) -> pa.Schema:
        return pa.schema([("number", pa.int64()), ("window", pa.int32()), ("feasible", pa.bool_())]
                         + [(column, kind) for _, column, kind in self.parameters]
                         + [(column, pa.float64()) for column in self.objectives]
                         + [(name, pa.int64() if is_int else pa.float64()) for name, is_int in _METRICS])

    def row(self, trial: opb.Trial) -> dict[str, Any]:
        values = json_format.MessageToDict(trial.parameters)
        row: dict[str, Any] = {"number": trial.number, "window": trial.window, "feasible": trial.feasible}
        for name, column, kind in self.parameters:
            value = values.get(name)
            row[column] = int(value) if kind == pa.int64() and isinstance(value, float) else value
        objectives = list(trial.objective_values)
        for k, column in enumerate(self.objectives):
            row[column] = _number(objectives[k]) if k < len(objectives) else None
        m = trial.metrics
        for name, _ in _METRICS:
            value = getattr(m, name)
            row[name] = _number(value) if isinstance(value, float) else value
        return row


def _parameter_type(p: opb.Parameter | None) -> pa.DataType:
    which = p.WhichOneof("domain") if p is not None else None
    if which == "int_range":
        return pa.int64()
    if which == "float_range":
        return pa.float64()
    if which == "choices" and p.choices.values:
        kinds = {v.WhichOneof("kind") for v in p.choices.values}
        if kinds == {"string_value"}:
            return pa.string()
        if kinds == {"bool_value"}:
            return pa.bool_()
        if all(v.number_value.is_integer() for v in p.choices.values):
            return pa.int64()
    return pa.float64()


def archive_members(store: OptimizationStore, rec: OptimizationRecord, catalog: Catalog,
                    best: list[opb.Trial], chunk_size: int = CHUNK_SIZE) -> list[Member]:
    """The ZIP's members for an ended optimization (`best`: its best trials when it has no
    result, e.g. cancelled)."""
    oid = rec.optimization_id
    event_log = store.event_log(oid)
    config = opb.OptimizationConfig.FromString(rec.config)
    first = event_log.read(0, 1)
    started = None
    if first:
        event = opb.OptimizationEvent.FromString(first[0][1])
        if event.HasField("optimization_started"):
            started = event.optimization_started
    terminal = opb.OptimizationEvent()
    if event_log.last_id:
        terminal.ParseFromString(event_log.read(event_log.last_id - 1, 1)[0][1])
    kind = terminal.WhichOneof("event")
    result = terminal.optimization_completed.result if kind == "optimization_completed" else None
    progress = getattr(terminal, kind).progress if kind in ("optimization_completed", "optimization_cancelled") \
        else opb.OptimizationProgress(completed_trials=rec.completed_trials, total_trials=rec.total_trials,
                                      completed_windows=rec.completed_windows, total_windows=rec.total_windows)
    columns = Columns(config, started)
    last = event_log.last_id

    def trials() -> Iterator[opb.Trial]:
        for page in read_pages(event_log):
            for event_id, payload in page:
                if event_id > last:
                    return
                event = opb.OptimizationEvent.FromString(payload)
                if event.HasField("trial_completed"):
                    yield event.trial_completed.trial

    def csv_blocks() -> Iterator[bytes]:
        return _csv_blocks((columns.row(t) for t in trials()), chunk_size)

    def parquet_blocks() -> Iterator[bytes]:
        schema = columns.schema()
        with tempfile.TemporaryFile() as f:
            with pq.ParquetWriter(f, schema) as writer:
                rows: list[dict[str, Any]] = []
                for t in trials():
                    rows.append(columns.row(t))
                    if len(rows) >= ROW_GROUP:
                        writer.write_table(pa.Table.from_pylist(rows, schema))
                        rows = []
                if rows:
                    writer.write_table(pa.Table.from_pylist(rows, schema))
            f.seek(0)
            while block := f.read(chunk_size):
                yield block

    top = list(result.top) if result is not None and result.top else list(best)
    if result is not None and result.HasField("walk_forward") and result.walk_forward.windows:
        picks = [(w.index, json_format.MessageToDict(w.parameters), {"in_sample": plain(w.in_sample),
                                                                      "out_of_sample": plain(w.out_of_sample)})
                 for w in result.walk_forward.windows if w.HasField("parameters")]
        entries = [{"window": index, "parameters": values, **metrics} for index, values, metrics in picks]
    else:
        entries = [{"rank": k + 1, **plain(t)} for k, t in enumerate(top)]
    base = result.best_strategy if result is not None and result.HasField("best_strategy") else None

    def top_strategies() -> Iterator[bytes]:
        apply = _applier(config, base, catalog)
        for entry in entries:
            if apply is not None:
                entry["strategy"] = plain(apply(entry["parameters"]))
        yield _json({"optimization_id": oid, "strategies": entries})

    summary: dict[str, Any] = {
        "optimization_id": oid, "strategy_id": rec.strategy_id, "status": rec.status,
        "error_code": rec.error_code, "error_message": rec.error_message, "progress": plain(progress),
        "top": [plain(t) for t in top],
        "pareto_front": [plain(t) for t in result.pareto_front] if result is not None else [],
        "overfitting": plain(result.overfitting) if result is not None and result.HasField("overfitting") else None,
        "best_strategy": plain(base) if base is not None else None,
        "config": plain(config),
    }
    members: list[Member] = [
        ("trials.csv", True, csv_blocks),
        ("trials.parquet", False, parquet_blocks),  # (compressed by Parquet itself)
        ("top_strategies.json", True, top_strategies),
        ("summary.json", True, lambda: iter((_json(summary),))),
    ]
    if result is not None and result.HasField("walk_forward"):
        report = plain(result.walk_forward)
        members.append(("walk_forward.json", True, lambda: iter((_json(report),))))
    return members


def _applier(config: opb.OptimizationConfig, base: strategy_pb2.Strategy | None,
             catalog: Catalog) -> Callable[[dict[str, Any]], strategy_pb2.Strategy] | None:
    """Parameter values → the trial's complete strategy: the space applied to the sweep's base
    strategy (overrides and warm-up included). The winner's strategy is such a base (every
    parameter is overwritten); without one (cancelled, failed) the base is prepared again.
    None when the space no longer applies (the engine changed): entries go without strategies."""
    if base is None:
        from services.engine.optimize.runner import Optimization

        try:
            base = Optimization.prepare(config, catalog).base
        except (ValueError, KeyError):  # the data or the engine changed: the request's strategy
            base = config.strategy
    try:
        space = compile_space(config.space, base)
    except SpecError:
        return None
    return space.apply
