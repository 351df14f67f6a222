"""The dataset catalog: SIM-NIFTY's properties, slicing, user files, the on-disk cache under races."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.engine.core.bars import Bars
from services.engine.core.calendar import trading_days
from services.engine.core.catalog import Catalog, DatasetInfo, UnknownDataset, _Source
from services.engine.core.data import DataError, resample
from services.engine.core.simdata import SIM_NIFTY, generate_sim_nifty

REPO = Path(__file__).resolve().parents[3]
START, END = date(2016, 1, 1), date(2025, 12, 31)
COLUMNS = ("ts", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory) -> Path:
    """One data dir with SIM-NIFTY built, shared read-only by the tests of this module."""
    d = tmp_path_factory.mktemp("catalog")
    Catalog(d).load("SIM-NIFTY")
    return d


@pytest.fixture(scope="session")
def sim(sim_dir) -> Bars:
    return Catalog(sim_dir).load("SIM-NIFTY")


USER_CSV = """Date,Open,High,Low,Close,Volume
2024-01-24 09:15,100,101,99,100.5,10
2024-01-24 09:16,100.5,102,100,101,5
2024-01-25 09:15,101,101.5,100.5,101,7
2024-01-25 09:16,101,103,101,102.5,9
2024-01-29 09:15,102,102,101,101.5,3
"""


def user_dir(tmp_path: Path, files: dict[str, str], sim_dir: Path | None = None) -> Path:
    """A data dir holding `files`; with `sim_dir`, SIM-NIFTY's build is hard-linked in (not regenerated)."""
    (tmp_path / "datasets").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "datasets" / name).write_text(text)
    if sim_dir is not None:
        shutil.copytree(sim_dir / "datasets" / "SIM-NIFTY", tmp_path / "datasets" / "SIM-NIFTY", copy_function=os.link)
    return tmp_path


# ---- SIM-NIFTY ---------------------------------------------------------------------------------

def test_sim_nifty_is_listed(sim_dir, sim):
    info = [i for i in Catalog(sim_dir).list() if i.symbol == "SIM-NIFTY"][0]
    days = trading_days("XBOM", START, END)
    assert info == DatasetInfo("SIM-NIFTY", SIM_NIFTY.description, "1m", days[0], days[-1], 375 * len(days),
                               "Asia/Kolkata", "XBOM")
    assert sim.symbol == "SIM-NIFTY" and sim.tz == "Asia/Kolkata" and sim.timeframe == "1m"


def test_sim_nifty_days_are_the_xbom_sessions_with_375_bars(sim):
    days = trading_days("XBOM", START, END)
    dates, starts = sim.day_bounds()
    assert len(dates) == len(days) and 2400 < len(days) < 2500
    assert [date.fromordinal(date(1970, 1, 1).toordinal() + int(d)) for d in dates] == days
    assert set(np.diff(starts)) == {375}
    assert len(sim) == 375 * len(days)
    mod = sim.minute_of_day.reshape(-1, 375)
    assert (mod[:, 0] == 9 * 60 + 15).all() and (mod[:, -1] == 15 * 60 + 29).all()
    assert (np.diff(sim.ts) > 0).all()


def test_sim_nifty_is_deterministic(sim):
    again = generate_sim_nifty()
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(again, name), getattr(sim, name))


def test_sim_nifty_ohlc_is_valid_and_on_the_tick(sim):
    for name in ("open", "high", "low", "close"):
        arr = getattr(sim, name)
        assert arr.dtype == np.float64 and arr.flags.c_contiguous and np.isfinite(arr).all() and (arr > 0).all()
        ticks = arr / 0.05
        assert np.abs(ticks - np.round(ticks)).max() < 1e-6
    assert (sim.high >= np.maximum(sim.open, sim.close)).all()
    assert (sim.low <= np.minimum(sim.open, sim.close)).all()
    assert (sim.high > sim.low).mean() > 0.99
    assert (sim.volume >= 0).all() and (sim.volume == np.round(sim.volume)).all()


def test_sim_nifty_looks_like_the_index(sim):
    assert sim.open[0] == 7900.0
    assert abs(sim.close[-1] - 24000.0) < 1.0
    dates, starts = sim.day_bounds()
    day_close = sim.close[starts[1:] - 1]
    day_open = sim.open[starts[:-1]]
    years = np.array_split(day_close, 10)
    assert np.mean(years[-1]) > 2 * np.mean(years[0])  # drifts up
    # Overnight gaps: the day's open is rarely the previous close.
    assert (day_open[1:] != day_close[:-1]).mean() > 0.95
    # Volatility clusters: big days follow big days (GARCH).
    r = np.diff(np.log(day_close))
    assert np.corrcoef(np.abs(r[1:]), np.abs(r[:-1]))[0, 1] > 0.05
    annual = r.std() * np.sqrt(250)
    assert 0.08 < annual < 0.30
    kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2
    assert kurtosis > 3.0  # fat tails


def test_sim_nifty_volume_and_volatility_are_u_shaped(sim):
    volume = sim.volume.reshape(-1, 375)
    first, mid, last = volume[:, :15].mean(), volume[:, 150:225].mean(), volume[:, -15:].mean()
    assert first > 1.5 * mid and last > 1.5 * mid
    move = np.abs(np.log(sim.close / sim.open)).reshape(-1, 375)
    assert move[:, :15].mean() > move[:, 150:225].mean() < move[:, -15:].mean()


def test_sim_nifty_resamples_on_the_session_grid(sim):
    five = resample(sim, "5m")
    assert len(five) == len(sim) // 5
    assert list(five.local_index[:2].strftime("%H:%M")) == ["09:15", "09:20"]


# ---- slicing -----------------------------------------------------------------------------------

def test_slice_is_whole_trading_days(sim_dir, sim):
    cat = Catalog(sim_dir)
    year = cat.load("SIM-NIFTY", date(2024, 1, 1), date(2024, 12, 31))
    days = trading_days("XBOM", date(2024, 1, 1), date(2024, 12, 31))
    assert len(year) == 375 * len(days)
    assert year.local_index[0].isoformat() == "2024-01-01T09:15:00+05:30"
    assert year.local_index[-1].isoformat() == "2024-12-31T15:29:00+05:30"
    i0 = int(np.searchsorted(sim.ts, year.ts[0]))
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(year, name), getattr(sim, name)[i0:i0 + len(year)])
        assert getattr(year, name).flags.writeable  # a plain copy, not the memory map
    # The per-day arrays seeded from the cache equal those Bars would compute itself.
    fresh = Bars(year.symbol, year.tz, year.ts, year.open, year.high, year.low, year.close, year.volume)
    np.testing.assert_array_equal(year.day, fresh.day)
    for got, want in zip(year.day_bounds(), fresh.day_bounds()):
        np.testing.assert_array_equal(got, want)


def test_slice_edges_on_holidays_and_open_ends(sim_dir):
    cat = Catalog(sim_dir)
    holiday = cat.load("SIM-NIFTY", date(2024, 1, 26), date(2024, 1, 26))
    assert len(holiday) == 0 and holiday.timeframe == "1m"
    around = cat.load("SIM-NIFTY", date(2024, 1, 26), date(2024, 1, 29))
    assert len(around) == 375 and around.local_index[0].date() == date(2024, 1, 29)
    assert cat.trading_days("SIM-NIFTY", date(2024, 1, 24), date(2024, 1, 30)) == [
        date(2024, 1, 24), date(2024, 1, 25), date(2024, 1, 29), date(2024, 1, 30)]
    head = cat.load("SIM-NIFTY", None, date(2016, 1, 5))
    assert len(head) == 3 * 375
    tail = cat.load("SIM-NIFTY", date(2025, 12, 30))
    assert len(tail) == 2 * 375
    assert len(cat.load("SIM-NIFTY", date(2030, 1, 1))) == 0
    assert len(cat.load("SIM-NIFTY", date(2024, 2, 1), date(2024, 1, 1))) == 0
    assert cat.date_range("SIM-NIFTY") == (date(2016, 1, 1), date(2025, 12, 31))


# ---- user datasets -----------------------------------------------------------------------------

def test_user_csv_is_listed_and_loadable(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV, "notes.txt": "not data"})
    cat = Catalog(d)
    assert cat.has("ACME") and not cat.has("notes")
    info = cat.info("ACME")
    assert info == DatasetInfo("ACME", "User dataset from ACME.csv", "1m", date(2024, 1, 24), date(2024, 1, 29),
                               5, "UTC", "")
    bars = cat.load("ACME", date(2024, 1, 25), None)
    assert bars.symbol == "ACME" and list(bars.close) == [101.0, 102.5, 101.5]
    assert cat.trading_days("ACME") == [date(2024, 1, 24), date(2024, 1, 25), date(2024, 1, 29)]
    builds = list((d / "datasets" / "ACME").iterdir())
    assert len(builds) == 1 and {p.name for p in builds[0].iterdir()} == {
        "ts.npy", "open.npy", "high.npy", "low.npy", "close.npy", "volume.npy", "dates.npy", "starts.npy",
        "meta.json"}


def test_user_dataset_sidecar_sets_zone_and_calendar(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV, "ACME.json": '{"calendar": "XBOM", "description": "Acme Ltd"}'})
    info = Catalog(d).info("ACME")
    assert (info.timezone, info.calendar, info.description) == ("Asia/Kolkata", "XBOM", "Acme Ltd")
    assert Catalog(d).load("ACME").minute_of_day[0] == 9 * 60 + 15
    (d / "datasets" / "ACME.json").write_text('{"calendar": "NOPE"}')
    with pytest.raises(DataError, match="ACME.json: unknown exchange calendar 'NOPE'"):
        Catalog(d).load("ACME")


def test_user_parquet_is_listed(tmp_path, sim_dir, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    small = Catalog(sim_dir).load("SIM-NIFTY", date(2024, 1, 1), date(2024, 1, 5))
    user_dir(tmp_path, {}, sim_dir)
    small.to_frame().to_parquet(tmp_path / "datasets" / "NIFTY-WEEK.parquet")
    cat = Catalog(tmp_path)
    infos = {i.symbol: i for i in cat.list()}
    assert infos["NIFTY-WEEK"].bars == len(small) and infos["NIFTY-WEEK"].timezone == "Asia/Kolkata"
    assert list(infos)[0] == "SIM-NIFTY"  # built-ins first
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(cat.load("NIFTY-WEEK"), name), getattr(small, name))


def test_changed_source_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV})
    cat = Catalog(d)
    assert len(cat.load("ACME")) == 5
    src = d / "datasets" / "ACME.csv"
    src.write_text(USER_CSV + "2024-01-29 09:16,101.5,102,101,101.5,1\n")
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert len(cat.load("ACME")) == 6
    assert len(Catalog(d).load("ACME")) == 6
    assert len(list((d / "datasets" / "ACME").iterdir())) == 1  # the old build is swept


def test_bad_user_file_fails_on_load_and_is_left_out_of_the_list(tmp_path, monkeypatch, sim_dir):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    bad = USER_CSV.replace("2024-01-25 09:16,101,103,101", "2024-01-25 09:16,101,100,101")
    d = user_dir(tmp_path, {"BAD.csv": bad, "ACME.csv": USER_CSV}, sim_dir)
    cat = Catalog(d)
    assert cat.has("BAD")
    with pytest.raises(DataError, match=r"BAD.csv: line 5: high 100 is below"):
        cat.load("BAD")
    assert [i.symbol for i in cat.list() if i.symbol != "SIM-NIFTY"] == ["ACME"]


def test_two_files_for_one_symbol(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV, "ACME.csv.gz": ""})
    with pytest.raises(DataError, match="ACME.csv, ACME.csv.gz all define dataset ACME: keep one"):
        Catalog(d).load("ACME")


def test_unknown_symbol(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    cat = Catalog(user_dir(tmp_path, {"ACME.csv": USER_CSV}))
    with pytest.raises(UnknownDataset) as exc:
        cat.load("NIFTY")
    assert isinstance(exc.value, KeyError)
    assert str(exc.value) == "unknown dataset 'NIFTY': known datasets are ACME, SIM-NIFTY"
    assert exc.value.known == ["ACME", "SIM-NIFTY"]
    assert not cat.has("NIFTY") and not cat.has("../ACME")
    with pytest.raises(UnknownDataset):
        cat.trading_days("NIFTY")


# ---- the cache under concurrent builds -----------------------------------------------------------

def test_racing_builds_leave_one_whole_cache(tmp_path, monkeypatch):
    """Four catalogs (as four processes would) build the same dataset at the same moment."""
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV})
    n = 4
    barrier = threading.Barrier(n)
    real_build = _Source.build

    def build_in_step(self):
        out = real_build(self)
        barrier.wait(timeout=30)  # every thread has built; all now race to rename into place
        return out

    monkeypatch.setattr(_Source, "build", build_in_step)
    results: list = [None] * n

    def work(i):
        try:
            results[i] = Catalog(d).load("ACME")
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in results:
        assert isinstance(r, Bars), r
        np.testing.assert_array_equal(r.close, results[0].close)
    assert [p.name.startswith(".tmp") for p in (d / "datasets").iterdir()] == [False, False]  # ACME/, ACME.csv
    builds = list((d / "datasets" / "ACME").iterdir())
    assert len(builds) == 1 and (builds[0] / "meta.json").is_file()
    monkeypatch.setattr(_Source, "build", real_build)
    assert len(Catalog(d).load("ACME")) == 5


def test_processes_building_at_once(tmp_path):
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV})
    code = ("import sys; from services.engine.core.catalog import Catalog; "
            "print(Catalog(sys.argv[1]).load('ACME').close.sum())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(d)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["506.5", "506.5"]
    assert len(list((d / "datasets" / "ACME").iterdir())) == 1
    assert not list((d / "datasets").glob(".tmp-*"))


def test_threads_sharing_one_catalog_build_once(tmp_path, monkeypatch):
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV})
    calls = []
    real_build = _Source.build

    def counting(self):
        calls.append(self.symbol)
        time.sleep(0.05)
        return real_build(self)

    monkeypatch.setattr(_Source, "build", counting)
    cat = Catalog(d)
    threads = [threading.Thread(target=cat.load, args=("ACME",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == ["ACME"]


def _no_sim(build):
    """Tests of user files must not generate SIM-NIFTY in their own data dirs."""
    def guarded(self):
        if self.path is None:
            raise AssertionError("this test should not build SIM-NIFTY")
        return build(self)
    return guarded


# ---- option chains beside datasets ---------------------------------------------------------------

CHAIN_CSV = "timestamp,expiry,strike,option_type,open,high,low,close\n"


def test_option_chain_files_are_not_datasets(tmp_path, monkeypatch, sim_dir):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV, "ACME.options.csv": CHAIN_CSV, "ORPHAN.Options.csv.gz": ""},
                 sim_dir)
    cat = Catalog(d)
    assert [i.symbol for i in cat.list()] == ["SIM-NIFTY", "ACME"]
    assert not cat.has("ACME.options") and not cat.has("ORPHAN.Options") and not cat.has("ORPHAN")


def test_option_chain_is_found_beside_its_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(_Source, "build", _no_sim(_Source.build))
    d = user_dir(tmp_path, {"ACME.csv": USER_CSV, "ACME.options.parquet": "", "ACMEX.csv": USER_CSV,
                            "ACMEX.options.csv": CHAIN_CSV})
    cat = Catalog(d)
    assert cat.option_chain("ACME") == d / "datasets" / "ACME.options.parquet"
    assert cat.option_chain("ACMEX") == d / "datasets" / "ACMEX.options.csv"
    assert cat.option_chain("SIM-NIFTY") is None
    with pytest.raises(UnknownDataset):
        cat.option_chain("NOPE")
    (d / "datasets" / "ACME.options.csv.gz").write_text("")
    with pytest.raises(DataError, match="ACME.options.csv.gz, ACME.options.parquet all define the option chain "
                                        "of ACME: keep one of them"):
        cat.option_chain("ACME")
