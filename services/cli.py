"""`hindsight` command line: run a backtest locally, or serve the engine and the gateway.

    hindsight run --strategy FILE --data CSV|PARQUET|SYMBOL [...]
    hindsight optimize --strategy FILE --space SPACE.json --method grid --data SYMBOL [...]
    hindsight engine | gateway | serve

Bad input (strategy, data, dates) prints one readable message per problem and exits 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from datetime import date
from pathlib import Path

EXIT_BAD_INPUT = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date: use YYYY-MM-DD") from None


def _data_dir() -> Path:
    return Path(os.environ.get("HINDSIGHT_DATA_DIR", "./var"))


def _load_data(spec: str, tz: str, calendar: str, options: bool = False):
    """A CSV/Parquet path, or a catalog symbol: (bars, where option prices come from or None).
    A file's option chain is the file <stem>.options.parquet (.pq, .csv, .csv.gz) beside it."""
    from services.engine.core.catalog import SOURCE_SUFFIXES, Catalog
    from services.engine.core.data import load_bars

    path = Path(spec)
    if path.suffix.lower() in (".csv", ".parquet", ".pq", ".gz") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"data file '{spec}' does not exist")
        stem = path.name[: -len(next((s for s in SOURCE_SUFFIXES if path.name.lower().endswith(s)), path.suffix))]
        chains = [path.with_name(f"{stem}.options{s}") for s in SOURCE_SUFFIXES]
        chain = next((c for c in chains if c.is_file()), None) if options else None
        source = None
        if chain is not None:
            from services.engine.options.runner import OptionSource
            from services.engine.options.symbols import underlying_root

            source = OptionSource("chain", underlying_root(stem), calendar or "XBOM", chain)
        return load_bars(path, symbol=stem, tz=tz), source
    catalog = Catalog(_data_dir())
    if not options:
        return catalog.load(spec, None, None), None
    from services.engine.options.runner import source_for

    return catalog.load(spec, None, None), source_for(catalog, spec)


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.perf_counter()
        self.last = 0.0

    def __call__(self, day) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and day.day_number != day.total_days:
            return
        self.last = now
        frac = day.day_number / day.total_days
        bar = "#" * int(frac * 30)
        eta = (now - self.started) / frac * (1 - frac) if frac else 0
        sys.stderr.write(f"\r[{bar:<30}] {day.day_number}/{day.total_days} {day.date}  ETA {eta:4.1f}s ")
        if day.day_number == day.total_days:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _fmt_metric(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _print_report(result, elapsed: float, out=sys.stdout) -> None:
    s, m = result.summary, result.metrics
    print(f"{result.plan.name} on {result.symbol}: {s['total_days']} days, {s['total_trades']} trades "
          f"in {elapsed:.2f}s", file=out)
    rows = [
        ("Initial capital", s["initial_capital"]), ("Final equity", s["final_equity"]),
        ("Total P&L", s["total_pnl"]), ("Total return %", m["total_return_pct"]), ("CAGR %", m["cagr_pct"]),
        ("Buy & hold return %", m["buy_and_hold_return_pct"]), ("Volatility (ann.) %", m["volatility_ann_pct"]),
        ("Sharpe", m["sharpe"]), ("Sortino", m["sortino"]), ("Calmar", m["calmar"]),
        ("Max drawdown %", m["max_drawdown_pct"]), ("Max drawdown days", m["max_drawdown_duration_days"]),
        ("Avg drawdown %", m["avg_drawdown_pct"]), ("Win rate %", m["win_rate_pct"]),
        ("Profit factor", m["profit_factor"]), ("Expectancy", m["expectancy"]), ("SQN", m["sqn"]),
        ("Avg win", m["avg_win"]), ("Avg loss", m["avg_loss"]), ("Largest win", m["largest_win"]),
        ("Largest loss", m["largest_loss"]), ("Max consecutive wins", m["max_consecutive_wins"]),
        ("Max consecutive losses", m["max_consecutive_losses"]), ("Exposure %", m["exposure_time_pct"]),
        ("Avg trade minutes", m["avg_trade_duration_minutes"]), ("VaR 95 % (daily)", m["var_95_pct"]),
        ("CVaR 95 % (daily)", m["cvar_95_pct"]), ("Commission", s["commission"]),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {_fmt_metric(v):>16}", file=out)


def cmd_run(args: argparse.Namespace) -> int:
    from services.engine.core import spec as specmod
    from services.engine.core.backtest import Backtest, RunSettings

    text = Path(args.strategy).read_text()
    plan = specmod.compile_strategy(specmod.parse_strategy_json(text))
    bars, source = _load_data(args.data, plan.session.timezone, plan.session.calendar, plan.has_legs)
    settings = RunSettings(start=args.date_from, end=args.date_to, timeframe=args.timeframe or "",
                           initial_capital=args.capital, commission_pct=args.commission_pct,
                           slippage_pct=args.slippage_pct)
    out_dir = Path(args.out) if args.out else None
    writer = None
    if out_dir is not None:
        from services.engine.daywriter import DayFileWriter

        writer = DayFileWriter(out_dir)
    try:
        t0 = time.perf_counter()
        bt = Backtest(plan, bars, settings, symbol=bars.symbol, options=source)
        progress = _Progress(sys.stderr.isatty() and not args.json and bt.total_days > 20)
        stream = _JsonTrades(sys.stdout.buffer, plan.name, bt.symbol) if args.json else None

        def on_day(day) -> None:
            if writer is not None:
                writer.submit(day)
            if stream is not None:
                stream.add(day.trades)
            progress(day)

        if writer is None and not progress.enabled:
            # Nothing needs the days: one kernel call, then the trades formatted and written
            # a few thousand at a time.
            result = bt.run()
            if stream is not None:
                for k in range(0, len(result.trades), _JSON_CHUNK):
                    stream.add(bt.builder.trade_dicts(result.trades[k:k + _JSON_CHUNK]))
        else:
            result = bt.run(on_day=on_day, events=writer is not None)
    finally:
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - t0
    if stream is not None:
        stream.finish(result)
    else:
        _print_report(result, elapsed)
        if out_dir is not None:
            print(f"  day files written to {out_dir}/<YYYY-MM-DD>/")
    return 0


_JSON_CHUNK = 4096


class _JsonTrades:
    """`--json`: one JSON object, written as the run goes — strategy and symbol, then each
    day's trades as they are formatted, then the calendar rows, summary and metrics (known at
    the end). NaN metrics are null."""

    def __init__(self, out, strategy: str, symbol: str):
        import orjson

        self._dumps = orjson.dumps
        self.out = out
        self.first = True
        out.write(b'{"strategy":' + orjson.dumps(strategy) + b',"symbol":' + orjson.dumps(symbol) + b',"trades":[')

    def add(self, trades: list[dict]) -> None:
        if not trades:
            return
        body = self._dumps(trades)
        self.out.write(body[1:-1] if self.first else b"," + body[1:-1])
        self.first = False

    def finish(self, result) -> None:
        d = self._dumps
        self.out.write(b'],"days":' + d(result.daily) + b',"summary":' + d(result.summary) + b',"metrics":'
                       + d(result.metrics) + b"}\n")
        self.out.flush()


# ---- hindsight optimize ------------------------------------------------------------------------

# Where a problem of the request (`config.…`) comes from on the command line.
_OPT_FLAGS = (
    ("config.strategy", "--strategy"), ("config.space", "--space"), ("config.grid_cap", "--space"),
    ("config.method", "--method"), ("config.objectives", "--objective"), ("config.filters", "--filter"),
    ("config.max_trials", "--max-trials"), ("config.seed", "--seed"), ("config.top_k", "--top-k"),
    ("config.population_size", "--population-size"), ("config.symbol", "--data"),
    ("config.start_date", "--start"), ("config.end_date", "--end"), ("config.walk_forward", "--walk-forward"),
    ("config.timeframe", "--timeframe"), ("config.initial_capital", "--capital"),
    ("config.commission_pct", "--commission-pct"), ("config.slippage_pct", "--slippage-pct"),
)
# Columns of the top-K table beside the objectives.
_KEY_METRICS = (("total_return_pct", "return %"), ("sharpe", "sharpe"), ("max_drawdown_pct", "max DD %"),
                ("total_trades", "trades"))
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|=|>|<)\s*"
                     r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_COUNT_METRICS = frozenset({"total_trades", "max_consecutive_wins", "max_consecutive_losses"})
_DIRECTION = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


class _OptProblems:
    """Every problem of an `optimize` command line, each with where to fix it."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.items: list[tuple[str, str, str]] = []   # (field path, flag, what to fix)
        self.objective_args: list[str] = []           # config.objectives[i] came from this --objective
        self.filter_args: list[str] = []              # config.filters[i] came from this --filter
        self.unread: set[str] = set()                 # "config.strategy", "config.space": a file not read

    def add(self, path: str, flag: str, description: str) -> None:
        self.items.append((path, flag, description))

    def add_request(self, problem) -> None:
        """A problem of the OptimizationConfig (`config.…`), named by its path and its flag."""
        path = problem.field or ""
        if any(path == u or path.startswith(u + ".") for u in self.unread):
            return  # said already: its file could not be read
        flag = ""
        for prefix, name in _OPT_FLAGS:
            if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                flag = name
                break
        index = re.match(r"config\.(objectives|filters)\[(\d+)\]", path)
        if index:
            given = self.objective_args if index.group(1) == "objectives" else self.filter_args
            k = int(index.group(2))
            if k < len(given):
                flag = f"{flag} {given[k]}"
        elif flag in ("--strategy", "--space", "--data"):
            flag = f"{flag} {getattr(self.args, flag[2:])}"
        shown = path.removeprefix("config.")
        self.add(shown, flag, problem.description)

    def report(self) -> None:
        n = len(self.items)
        print(f"error: invalid optimization ({n} problem{'s' if n != 1 else ''}):", file=sys.stderr)
        for path, flag, description in self.items:
            where = f"{path} ({flag})" if path and flag else path or flag
            print(f"  {where}: {description}", file=sys.stderr)


class _FileCatalog:
    """One data file as the optimizer's catalog (has, load, trading_days), read once."""

    def __init__(self, path: Path, symbol: str, tz):
        self.path, self.symbol, self._tz = path, symbol, tz
        self._bars = None

    def load(self, symbol: str, start=None, end=None):
        if self._bars is None:
            from services.engine.core.data import load_bars

            if not self.path.exists():
                raise FileNotFoundError(f"data file '{self.path}' does not exist")
            self._bars = load_bars(self.path, symbol=self.symbol, tz=self._tz())
        return self._bars

    def has(self, symbol: str) -> bool:
        return symbol == self.symbol

    def trading_days(self, symbol: str, start=None, end=None) -> list:
        from services.engine.core.calendar import day_date

        dates, _ = self.load(symbol).day_bounds()
        days = (day_date(int(n)) for n in dates)
        return [d for d in days if (start is None or d >= start) and (end is None or d <= end)]


def _optimization_config(args: argparse.Namespace, problems: _OptProblems):
    """The OptimizationConfig the flags describe, and the catalog its data comes from; what
    cannot be read goes to `problems` (the rest is still built, so every problem is named)."""
    import json

    from google.protobuf import json_format

    from hindsight.v1 import optimization_pb2 as opb

    from services.engine.core.spec import SpecError, compile_strategy, parse_strategy_json

    config = opb.OptimizationConfig(method=args.method)
    try:
        config.strategy.CopyFrom(parse_strategy_json(Path(args.strategy).read_text()))
    except OSError as exc:
        problems.add("strategy", f"--strategy {args.strategy}", f"cannot read it: {exc.strerror or exc}")
        problems.unread.add("config.strategy")
    except SpecError as exc:
        problems.unread.add("config.strategy")
        for p in exc.problems:
            problems.add(f"strategy.{p.field}" if p.field else "strategy", f"--strategy {args.strategy}", p.description)
    try:
        doc = json.loads(Path(args.space).read_text())
        if isinstance(doc, dict) and "space" in doc and "parameters" not in doc:
            doc = doc["space"]  # {"space": {...}}, as in a request, is taken too
        json_format.ParseDict(doc, config.space)
    except OSError as exc:
        problems.add("space", f"--space {args.space}", f"cannot read it: {exc.strerror or exc}")
        problems.unread.add("config.space")
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
        problems.unread.add("config.space")
        detail = str(exc).split("\n")[0].rstrip(".")
        problems.add("space", f"--space {args.space}", f"not a ParameterSpace in proto3 JSON: {detail} (e.g. "
                     '{"parameters": [{"name": "fast", "path": "indicators[0].period", '
                     '"int_range": {"low": 5, "high": 50, "step": 5}}]})')
    for text in args.objective or []:
        metric, _, direction = text.partition(":")
        problems.objective_args.append(text)
        direction = direction.strip()
        config.objectives.add(metric=metric.strip(), direction=_DIRECTION.get(direction.lower(), direction))
    for text in args.filter or []:
        m = _FILTER.match(text)
        if not m:
            problems.add("filters", f"--filter {text}", "use METRIC>=N, METRIC<=N or METRIC==N, e.g. total_trades>=30")
            continue
        metric, op, value = m.group(1), m.group(2), float(m.group(3))
        f = config.filters.add(metric=metric)
        if op in (">=", ">", "==", "="):
            f.min = value
        if op in ("<=", "<", "==", "="):
            f.max = value
        problems.filter_args.append(text)
    if args.walk_forward:
        parts = [p.strip() for p in args.walk_forward.split(":")]
        anchored = bool(parts) and parts[-1].lower() == "anchored"
        numbers = parts[:-1] if anchored else parts
        try:
            values = [int(p) for p in numbers]
            if len(values) not in (2, 3):
                raise ValueError
        except ValueError:
            problems.add("walk_forward", f"--walk-forward {args.walk_forward}",
                         "use TRAIN:TEST[:STEP][:anchored] in trading days, e.g. 120:20 or 250:20:20:anchored")
        else:
            wf = config.walk_forward
            wf.train_days, wf.test_days = values[0], values[1]
            wf.step_days = values[2] if len(values) == 3 else 0
            wf.anchored = anchored
    for name in ("max_trials", "seed", "top_k", "population_size"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    for name, attr in (("initial_capital", "capital"), ("commission_pct", "commission_pct"),
                       ("slippage_pct", "slippage_pct")):
        value = getattr(args, attr)
        if value is not None:
            setattr(config, name, value)
    config.timeframe = args.timeframe or ""
    config.start_date = args.date_from.isoformat() if args.date_from else ""
    config.end_date = args.date_to.isoformat() if args.date_to else ""

    path = Path(args.data)
    if path.suffix.lower() in (".csv", ".parquet", ".pq", ".gz") or path.exists():
        from services.engine.core.catalog import SOURCE_SUFFIXES

        stem = path.name[: -len(next((s for s in SOURCE_SUFFIXES if path.name.lower().endswith(s)), path.suffix))]
        config.symbol = stem

        def tz():
            try:
                return compile_strategy(config.strategy).session.timezone
            except SpecError:
                return "Asia/Kolkata"

        if not path.exists():
            problems.add("symbol", f"--data {args.data}", "the data file does not exist")
        catalog = _FileCatalog(path, stem, tz)
    else:
        from services.engine.core.catalog import Catalog

        config.symbol = args.data
        catalog = Catalog(_data_dir())
    return config, catalog


def _plain_values(struct) -> dict:
    from google.protobuf import json_format

    out = {}
    for k, v in json_format.MessageToDict(struct).items():
        out[k] = int(v) if isinstance(v, float) and v.is_integer() else v
    return out


def _fmt_param(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _fmt_cell(v, digits: int = 2) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:,.{digits}f}"
    return str(v)


class _SweepProgress:
    """Trials done/total, rate and the best so far: a bar redrawn in place on a terminal, a
    plain line every `every` seconds otherwise."""

    def __init__(self, total: int, tty: bool, every: float = 10.0):
        self.total, self.tty, self.every = total, tty, every
        self.started = time.perf_counter()
        self.last = self.started
        self.done = 0
        self.windows = (0, 0)
        self.best = ""
        self.shown = False
        self.drawn_done = -1

    def update(self, done: int, best: str, windows: tuple[int, int]) -> None:
        self.done, self.windows = done, windows
        if best:
            self.best = best
        now = time.perf_counter()
        if (now - self.last < (0.1 if self.tty else self.every) and done < self.total) or done == self.drawn_done:
            return
        self.drawn_done = done
        self.last = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(1e-9, now - self.started)
        rate = self.done / elapsed
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        parts = [f"{self.done:,}/{self.total:,} trials", f"{rate:,.1f}/s"]
        if self.windows[1]:
            parts.append(f"window {min(self.windows[0] + 1, self.windows[1])}/{self.windows[1]}")
        if self.best:
            parts.append(f"best {self.best}")
        if rate > 0 and self.done < self.total:
            parts.append(f"ETA {fmt_seconds((self.total - self.done) / rate)}")
        text = " · ".join(parts)
        if self.tty:
            import shutil

            width = shutil.get_terminal_size((100, 20)).columns
            line = f"[{'#' * int(frac * 24):<24}] {text}"
            sys.stderr.write("\r\033[K" + line[: max(10, width - 1)])
            self.shown = True
        else:
            sys.stderr.write(f"optimize: {text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.shown:
            if self.drawn_done != self.done:
                self._draw(time.perf_counter())
            sys.stderr.write("\n")
            sys.stderr.flush()


def fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}min"
    return f"{s / 3600:.1f}h"


class _Collected:
    """What the sweep's events brought: every trial, the best, the windows, the progress."""

    def __init__(self, objectives: list[tuple[str, str]], progress: _SweepProgress | None):
        self.objectives = objectives
        self.progress = progress
        self.trials: list = []
        self.best: list = []
        self.windows: list = []
        self.completed = 0
        self.window_counts = (0, 0)

    def emit(self, events) -> None:
        best = ""
        for ev in events:
            kind = ev.WhichOneof("event")
            if kind == "trial_completed":
                self.trials.append(ev.trial_completed.trial)
                p = ev.trial_completed.progress
                self.completed = p.completed_trials
                self.window_counts = (p.completed_windows, p.total_windows)
            elif kind == "best_updated":
                self.best = list(ev.best_updated.best)
                if self.best:
                    t = self.best[0]
                    metric = self.objectives[0][0]
                    value = t.objective_values[0] if t.objective_values else math.nan
                    params = ", ".join(f"{k}={_fmt_param(v)}" for k, v in _plain_values(t.parameters).items())
                    best = f"{metric} {_fmt_cell(value)} ({params})"
            elif kind == "window_completed":
                self.windows.append(ev.window_completed.window)
                p = ev.window_completed.progress
                self.window_counts = (p.completed_windows, p.total_windows)
        if self.progress is not None:
            self.progress.update(self.completed, best, self.window_counts)

    def top(self, k: int) -> list:
        """The best k distinct feasible trials of the latest window (a stopped sweep's top-K)."""
        if not self.trials:
            return []
        window = self.trials[-1].window
        signs = [1.0 if d == "maximize" else -1.0 for _, d in self.objectives]
        seen, cands = set(), []
        for t in self.trials:
            if t.window != window or not t.feasible:
                continue
            key = tuple(sorted(_plain_values(t.parameters).items()))
            if key in seen:
                continue
            seen.add(key)
            cands.append(t)
        cands.sort(key=lambda t: (-signs[0] * t.objective_values[0], t.number))
        return cands[:k]


def _print_top(trials, names: list[str], objectives: list[tuple[str, str]], front: set[int], out) -> None:
    if not trials:
        print("No feasible trial (every one was rejected by a filter, or had no result).", file=out)
        return
    objective_metrics = [m for m, _ in objectives]
    extra = [(m, label) for m, label in _KEY_METRICS if m not in objective_metrics]
    head = ["rank", "trial"] + names + [f"{m} ({'max' if d == 'maximize' else 'min'})" for m, d in objectives] \
        + [label for _, label in extra]
    rows = []
    for rank, t in enumerate(trials, 1):
        values = _plain_values(t.parameters)
        row = [str(rank) + ("*" if t.number in front else ""), str(t.number)]
        row += [_fmt_param(values.get(n, "")) for n in names]
        row += [_fmt_cell(int(v) if m in _COUNT_METRICS and math.isfinite(v) else v, 3)
                for v, (m, _) in zip(t.objective_values, objectives)]
        row += [_fmt_cell(getattr(t.metrics, m)) for m, _ in extra]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    left = 2 + len(names)  # rank, trial and the parameters: left-aligned; numbers right-aligned
    print("  " + "  ".join(h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))),
          file=out)
    for r in rows:
        print("  " + "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))),
              file=out)


def _print_overfitting(rep, out, indent: str = "") -> None:
    parts = []
    if math.isfinite(rep.deflated_sharpe):
        parts.append(f"DSR {rep.deflated_sharpe:.2f} (winner's daily Sharpe {rep.winner_sharpe:.3f}, luck alone "
                     f"gives {rep.expected_max_sharpe:.3f} over {rep.trials:,} trials)")
    if math.isfinite(rep.pbo):
        parts.append(f"PBO {rep.pbo:.2f} ({rep.cscv_splits} splits, {rep.cscv_combinations:,} combinations)")
    print(f"{indent}Overfitting: {'; '.join(parts) or 'not enough trials or days to judge'}", file=out)
    if rep.reading:
        print(f"{indent}  {rep.reading}", file=out)


def _print_walk_forward(wf, names: list[str], out) -> None:
    print(f"Walk-forward: {len(wf.windows)} window{'s' if len(wf.windows) != 1 else ''}", file=out)
    head = ["window", "train", "test", "parameters", "IS return %", "IS sharpe", "OOS return %", "OOS sharpe", "DSR"]
    rows = []
    for w in wf.windows:
        values = _plain_values(w.parameters)
        params = " ".join(f"{n}={_fmt_param(values[n])}" for n in names if n in values) or "(no feasible trial)"
        rows.append([str(w.index), f"{w.train_start}..{w.train_end}", f"{w.test_start}..{w.test_end}", params,
                     _fmt_cell(w.in_sample.total_return_pct), _fmt_cell(w.in_sample.sharpe),
                     _fmt_cell(w.out_of_sample.total_return_pct), _fmt_cell(w.out_of_sample.sharpe),
                     _fmt_cell(w.overfitting.deflated_sharpe)])
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  " + "  ".join(h.ljust(w) if i < 4 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))),
              file=out)
        for r in rows:
            print("  " + "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))),
                  file=out)
    if wf.equity:
        m = wf.out_of_sample
        print(f"  Out of sample ({wf.dates[0]}..{wf.dates[-1]}): return {_fmt_cell(m.total_return_pct)} %, sharpe "
              f"{_fmt_cell(m.sharpe)}, max drawdown {_fmt_cell(m.max_drawdown_pct)} %, final equity "
              f"{_fmt_cell(wf.equity[-1])}", file=out)
        if math.isfinite(wf.efficiency):
            print(f"  Walk-forward efficiency {wf.efficiency:.2f} (annualized out-of-sample return over in-sample; "
                  "near 1: the optimization found something that lasts, near 0 or below: it fit noise)", file=out)
        else:
            print("  Walk-forward efficiency: not defined (the in-sample return is not positive, so out-of-sample "
                  "over in-sample says nothing)", file=out)


def _to_json(message) -> dict:
    """proto3 JSON as the gateway writes it (original field names, every field), NaN and
    infinities as null."""
    from services.gateway.jsonenc import message_to_dict

    return _nulls(message.DESCRIPTOR, message_to_dict(message))


def _nulls(desc, d):
    from google.protobuf.descriptor import FieldDescriptor as F

    if not isinstance(d, dict) or desc.full_name.startswith("google.protobuf."):
        return d
    for f in desc.fields:
        if f.name not in d:
            continue
        v = d[f.name]
        if f.cpp_type in (F.CPPTYPE_DOUBLE, F.CPPTYPE_FLOAT):
            if isinstance(v, list):
                d[f.name] = [None if isinstance(x, str) else x for x in v]
            elif isinstance(v, str):
                d[f.name] = None
        elif f.cpp_type == F.CPPTYPE_MESSAGE and not f.message_type.GetOptions().map_entry:
            if isinstance(v, list):
                d[f.name] = [_nulls(f.message_type, x) for x in v]
            else:
                d[f.name] = _nulls(f.message_type, v)
    return d


def cmd_optimize(args: argparse.Namespace) -> int:
    import signal
    import tempfile

    from services.engine.core.spec import SpecError
    from services.engine.optimize.runner import Optimization

    problems = _OptProblems(args)
    config, catalog = _optimization_config(args, problems)
    try:
        opt = Optimization.prepare(config, catalog)
    except SpecError as exc:
        for p in exc.problems:
            problems.add_request(p)
        problems.report()
        return EXIT_BAD_INPUT
    except Exception:
        if problems.items:  # the flags' own problems first (the data may fail because of them)
            problems.report()
            return EXIT_BAD_INPUT
        raise
    if problems.items:
        problems.report()
        return EXIT_BAD_INPUT

    names = list(opt.space.names)
    objectives = list(opt.objectives)
    quiet = args.json
    started = opt.started()
    print(f"optimize: {opt.base.name or 'strategy'} on {config.symbol} {started.first_date}..{started.last_date}: "
          f"{opt.total_trials:,} trials ({config.method}"
          + (f", {opt.total_windows} walk-forward windows" if opt.total_windows else "") + "); Ctrl-C stops and "
          "shows what was found", file=sys.stderr, flush=True)
    progress = _SweepProgress(opt.total_trials, sys.stderr.isatty())
    collected = _Collected(objectives, progress)
    stop = {"asked": False}

    def on_sigint(_signum, _frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        sys.stderr.write("\noptimize: stopping after the trials in flight (Ctrl-C again to quit at once)\n")
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, on_sigint)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="hindsight-optimize-") as state:
            outcome = opt.run(collected.emit, state_dir=Path(state), should_stop=lambda: stop["asked"])
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    elapsed = time.perf_counter() - t0
    result = outcome.result
    cancelled = outcome.status != "completed"
    top = list(result.top) if result is not None and result.top else collected.top(opt.top_k)
    if opt.walk_forward and not cancelled:
        top = []

    if quiet:
        import orjson

        doc = _to_json(result) if result is not None else {}
        doc = {"status": outcome.status, "started": _to_json(started), "progress": _to_json(outcome.progress),
               "elapsed_s": round(elapsed, 3), **doc}
        if result is None:
            doc["top"] = [_to_json(t) for t in top]
            doc["walk_forward"] = {"windows": [_to_json(w) for w in collected.windows]}
        doc["trials"] = [_to_json(t) for t in collected.trials]
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        sys.stdout.flush()
        return 130 if cancelled else 0

    out = sys.stdout
    done = outcome.progress.completed_trials
    state_text = "stopped" if cancelled else "done"
    print(f"{opt.base.name or 'strategy'} on {config.symbol} {started.first_date}..{started.last_date}: "
          f"{config.method}, {done:,} of {opt.total_trials:,} trials in {elapsed:.1f}s ({state_text}); objectives "
          f"{', '.join(started.objectives)}", file=out)
    if cancelled:
        print("Stopped before the end: the best of the trials run so far (no overfitting statistics).", file=out)
    if top:
        front = {t.number for t in result.pareto_front} if result is not None else set()
        label = f"Top {len(top)}" + (" (latest window)" if opt.walk_forward else "")
        print(f"\n{label}" + (" (* on the Pareto front)" if front else ""), file=out)
        _print_top(top, names, objectives, front, out)
    elif not opt.walk_forward:
        print("\nNo feasible trial: every one was rejected by a filter or had no result.", file=out)
    if result is not None and not opt.walk_forward:
        print(file=out)
        _print_overfitting(result.overfitting, out)
    if opt.walk_forward:
        from hindsight.v1 import optimization_pb2 as opb

        wf = result.walk_forward if result is not None else opb.WalkForwardReport(windows=collected.windows)
        print(file=out)
        _print_walk_forward(wf, names, out)
        for w in wf.windows:
            if w.overfitting.reading:
                print(f"  Window {w.index}: {w.overfitting.reading}", file=out)
    if result is not None and result.HasField("best_strategy"):
        if top:
            values = _plain_values(top[0].parameters)
            print("\nBest: " + ", ".join(f"{k}={_fmt_param(values[k])}" for k in names if k in values), file=out)
        elif opt.walk_forward and result.walk_forward.windows:
            values = _plain_values(result.walk_forward.windows[-1].parameters)
            print("\nThe latest window's winner (the strategy to trade next): "
                  + ", ".join(f"{k}={_fmt_param(values[k])}" for k in names if k in values), file=out)
        if args.best_out:
            from google.protobuf import json_format

            Path(args.best_out).write_text(json_format.MessageToJson(result.best_strategy,
                                                                     preserving_proto_field_name=True) + "\n")
            print(f"The winner as a complete strategy: {args.best_out}", file=out)
    return 130 if cancelled else 0


def _add_optimize_parser(sub) -> None:
    o = sub.add_parser("optimize", help="sweep a strategy's parameters locally and print the best trials",
                       description="Sweep a strategy's parameters over a space (grid, random, Bayesian, genetic), "
                                   "optionally walk-forward, and print the top trials with how likely the winner "
                                   "is overfit (DSR, PBO). Bad input exits 2; Ctrl-C stops and shows what was found.")
    o.add_argument("--strategy", required=True, help="strategy file (proto3 JSON of hindsight.v1.Strategy)")
    o.add_argument("--space", required=True, help="parameter space file (proto3 JSON of hindsight.v1.ParameterSpace), "
                                                  "e.g. examples/spaces/sma_cross.space.json")
    o.add_argument("--method", default="grid", help="grid (default), random, bayesian or genetic")
    o.add_argument("--objective", action="append", metavar="METRIC[:maximize|minimize]",
                   help="a Metrics field to optimize (repeat for a Pareto front; default sharpe:maximize)")
    o.add_argument("--data", required=True, help="OHLCV CSV or Parquet file, or a catalog symbol (e.g. SIM-NIFTY)")
    o.add_argument("--start", "--from", dest="date_from", type=_date, help="first trading date, YYYY-MM-DD")
    o.add_argument("--end", "--to", dest="date_to", type=_date, help="last trading date, YYYY-MM-DD")
    o.add_argument("--max-trials", type=int, help="trials to run (random, bayesian, genetic: default 100; "
                                                  "grid: at most this many, default the whole grid)")
    o.add_argument("--seed", type=int, help="seed of the random, Bayesian and genetic samplers")
    o.add_argument("--population-size", type=int, help="genetic: individuals per generation (default 50)")
    o.add_argument("--top-k", type=int, help="how many of the best trials to show (default 10, at most 100)")
    o.add_argument("--filter", action="append", metavar="METRIC>=N",
                   help="trials outside it cannot win, e.g. total_trades>=30 (also <=, ==; repeatable)")
    o.add_argument("--walk-forward", metavar="TRAIN:TEST[:STEP][:anchored]",
                   help="walk-forward analysis: trading days per train and test window, e.g. 120:20")
    o.add_argument("--capital", type=float, help="initial capital (default: the strategy's, else 100000)")
    o.add_argument("--commission-pct", type=float, help="commission, percent of notional per fill")
    o.add_argument("--slippage-pct", type=float, help="slippage, percent of price per fill")
    o.add_argument("--timeframe", help="resample to 1m, 5m, 15m, 30m, 1h or 1d")
    o.add_argument("--best-out", metavar="FILE", help="write the winner as a complete strategy (JSON) here")
    o.add_argument("--json", action="store_true", help="print one JSON document: the result (proto3 JSON, "
                                                       "NaN as null) and every trial")
    o.set_defaults(func=cmd_optimize)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hindsight", description="Hindsight backtesting service")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a backtest locally and print its report")
    r.add_argument("--strategy", required=True, help="strategy file (proto3 JSON of hindsight.v1.Strategy)")
    r.add_argument("--data", required=True, help="OHLCV CSV or Parquet file, or a catalog symbol (e.g. SIM-NIFTY)")
    r.add_argument("--from", dest="date_from", type=_date, help="first trading date, YYYY-MM-DD")
    r.add_argument("--to", dest="date_to", type=_date, help="last trading date, YYYY-MM-DD")
    r.add_argument("--capital", type=float, help="initial capital (default: the strategy's, else 100000)")
    r.add_argument("--commission-pct", type=float, help="commission, percent of notional per fill")
    r.add_argument("--slippage-pct", type=float, help="slippage, percent of price per fill")
    r.add_argument("--timeframe", help="resample to 1m, 5m, 15m, 30m, 1h or 1d")
    r.add_argument("--out", help="write per-day trades_daily.json.gz / diagnostics_export.json.gz here")
    r.add_argument("--json", action="store_true", help="print one JSON object: summary, metrics, trades, days")
    r.set_defaults(func=cmd_run)
    _add_optimize_parser(sub)
    for name, helptext in (("engine", "serve the gRPC engine"), ("gateway", "serve the HTTP gateway"),
                           ("serve", "serve engine and gateway together (what `make run` does)")):
        s = sub.add_parser(name, help=helptext)
        s.set_defaults(func=_server_command(name))
    u = sub.add_parser("users", help="manage users and their API keys (the engine's users database)")
    usub = u.add_subparsers(dest="users_command", required=True)
    a = usub.add_parser("add", help="add a user (or, with --key-only, a key for one) and print a new API key once")
    a.add_argument("user_id", help="1-64 of A-Z a-z 0-9 _ . @ -")
    a.add_argument("--admin", action="store_true", help="may see every user's backtests")
    a.add_argument("--label", default="", help="what the key is for (shown by list)")
    a.add_argument("--key-only", action="store_true", help="the user exists: issue another key")
    a.set_defaults(func=cmd_users_add)
    ls = usub.add_parser("list", help="list users and their keys (never the keys themselves)")
    ls.set_defaults(func=cmd_users_list)
    rv = usub.add_parser("revoke", help="revoke a key (by key id) or every key of a user (by user id)")
    rv.add_argument("ident", help="a key id (from list) or a user id")
    rv.set_defaults(func=cmd_users_revoke)
    return p


def _users():
    from services.engine.auth import UserStore
    from services.engine.settings import EngineSettings

    settings = EngineSettings.from_env()
    return UserStore(settings.users_db), settings.users_db


def cmd_users_add(args: argparse.Namespace) -> int:
    users, path = _users()
    try:
        if not args.key_only:
            users.add_user(args.user_id, "admin" if args.admin else "user")
        token = users.issue_key(args.user_id, args.label)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        users.close()
    print(token)
    print(f"(the API key of '{args.user_id}', shown this once; send it as 'Authorization: Bearer <key>'. "
          f"Users are in {path}; an engine with users requires a token from every caller.)", file=sys.stderr)
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    import datetime as dt

    users, _ = _users()
    try:
        keys: dict[str, list] = {}
        for k in users.keys():
            keys.setdefault(k.user_id, []).append(k)
        for user_id, role, _created in users.users():
            print(f"{user_id}\t{role}")
            for k in keys.get(user_id, []):
                when = dt.datetime.fromtimestamp(k.created_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                state = "revoked" if k.revoked_at else "active"
                print(f"  key {k.key_id}\t{state}\tcreated {when}\t{k.label}")
    finally:
        users.close()
    return 0


def cmd_users_revoke(args: argparse.Namespace) -> int:
    users, _ = _users()
    try:
        n = users.revoke(args.ident)
    finally:
        users.close()
    if not n:
        print(f"error: no active key with id or user id '{args.ident}'", file=sys.stderr)
        return 1
    print(f"revoked {n} key{'s' if n != 1 else ''}")
    return 0


def _server_command(name: str):
    def run(args: argparse.Namespace) -> int:
        if name == "engine":
            from services.engine.server import main as engine_main

            return engine_main()
        if name == "gateway":
            from services.gateway.app import main as gateway_main

            return gateway_main()
        from services.serve import main as serve_main

        return serve_main()

    return run


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from services.engine.core.backtest import RunError
    from services.engine.core.spec import SpecError

    bad_input: tuple[type[BaseException], ...] = (SpecError, RunError, FileNotFoundError)
    try:
        from services.engine.core.data import DataError
        from services.engine.core.catalog import UnknownDataset

        bad_input += (DataError, UnknownDataset)
    except ImportError:  # pragma: no cover - only while the data layer is absent
        pass
    try:
        return int(args.func(args) or 0)
    except bad_input as exc:
        problems = getattr(exc, "problems", None)
        if problems:
            print(f"error: invalid strategy ({len(problems)} problem{'s' if len(problems) != 1 else ''}):",
                  file=sys.stderr)
            for pr in problems:
                print(f"  {pr}", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `hindsight run ... | head`: the reader left; not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
