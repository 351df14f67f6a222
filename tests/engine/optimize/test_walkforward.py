"""Walk-forward windows (rolling and anchored) and the report: stitched out-of-sample record and
walk-forward efficiency."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from services.engine.core.spec import SpecError
from services.engine.optimize.walkforward import annualized_return, report, windows

DAYS = [date(2024, 1, 1) + timedelta(days=k) for k in range(100)]


def test_rolling_windows_tile_the_out_of_sample_period():
    ws = windows(DAYS, train_days=40, test_days=20)
    assert [(w.train, w.test) for w in ws] == [
        ((DAYS[0], DAYS[39]), (DAYS[40], DAYS[59])),
        ((DAYS[20], DAYS[59]), (DAYS[60], DAYS[79])),
        ((DAYS[40], DAYS[79]), (DAYS[80], DAYS[99])),
    ]
    tests = [d for w in ws for d in DAYS[DAYS.index(w.test[0]):DAYS.index(w.test[1]) + 1]]
    assert tests == DAYS[40:]  # every out-of-sample day once, in order


def test_anchored_windows_train_on_everything_before():
    ws = windows(DAYS, train_days=40, test_days=20, anchored=True)
    assert [w.train for w in ws] == [(DAYS[0], DAYS[39]), (DAYS[0], DAYS[59]), (DAYS[0], DAYS[79])]
    assert [w.index for w in ws] == [0, 1, 2]


def test_a_step_shorter_than_the_test_overlaps():
    ws = windows(DAYS, train_days=50, test_days=20, step_days=10)
    assert len(ws) == 4 and ws[1].test == (DAYS[60], DAYS[79])


@pytest.mark.parametrize("kw,field", [
    (dict(train_days=0, test_days=5), "walk_forward.train_days"),
    (dict(train_days=5, test_days=0), "walk_forward.test_days"),
    (dict(train_days=5, test_days=5, step_days=-1), "walk_forward.step_days"),
    (dict(train_days=90, test_days=20), "walk_forward.train_days"),
])
def test_bad_settings_name_their_field(kw, field):
    with pytest.raises(SpecError) as info:
        windows(DAYS, **kw)
    assert field in [p.field for p in info.value.problems]


def test_annualized_return():
    assert annualized_return(np.full(252, 0.001)) == pytest.approx(1.001 ** 252 - 1)
    assert annualized_return(np.array([-1.0, 0.1])) == -1.0


def test_efficiency_of_a_lasting_and_of_a_fitted_edge():
    rng = np.random.default_rng(0)
    lasting_is = [rng.normal(0.001, 0.005, 120) for _ in range(4)]
    lasting_oos = [rng.normal(0.001, 0.005, 60) for _ in range(4)]
    good = report(lasting_is, lasting_oos)
    assert 0.4 < good.efficiency < 2.5
    fitted = report([np.full(120, 0.002)] * 4, [rng.normal(-0.0005, 0.005, 60) for _ in range(4)])
    assert fitted.efficiency < 0.2
    assert fitted.oos_returns.size == 240 and fitted.oos_equity[-1] == pytest.approx(np.prod(1 + fitted.oos_returns))
    with pytest.raises(ValueError):
        report([np.zeros(3)], [])
