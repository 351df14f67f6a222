"""`hindsight` command line: run a backtest locally, or serve the engine and the gateway.

    hindsight run --strategy FILE --data CSV|PARQUET|SYMBOL [...]
    hindsight engine | gateway | serve

Bad input (strategy, data, dates) prints one readable message per problem and exits 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
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
