"""The Deflated Sharpe Ratio and PBO (CSCV) on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.engine.optimize.overfitting import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    probability_of_overfitting,
    sharpe,
)

DAYS = 250


def test_the_papers_worked_example():
    """Bailey & López de Prado (2014), section "A numerical example": an annualized Sharpe of
    2.5 over 1,250 daily observations, the best of 100 trials whose annualized Sharpe ratios
    vary with variance 0.5, returns with skewness -3 and kurtosis 10: DSR ≈ 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / DAYS)  # per day: the variance of daily Sharpe ratios
    dsr = probabilistic_sharpe(2.5 / math.sqrt(DAYS), sr0, 1250, skewness=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def test_psr_against_the_normal_case():
    # Normal returns (skew 0, kurtosis 3): PSR = Φ((SR - SR*) √(T-1) / √(1 + SR²/2)).
    sr, t = 0.1, 500
    expected = 0.5 * (1 + math.erf((sr * math.sqrt(t - 1) / math.sqrt(1 + sr * sr / 2)) / math.sqrt(2)))
    assert probabilistic_sharpe(sr, 0.0, t) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe(sr, sr, t) == pytest.approx(0.5)


def test_expected_max_grows_with_trials_and_matches_simulation():
    rng = np.random.default_rng(7)
    v = 0.04
    for n in (10, 100, 1000):
        simulated = rng.normal(0, math.sqrt(v), size=(4000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, v) == pytest.approx(simulated, rel=0.05), n  # an approximation (~2 % at N=10)
    assert expected_max_sharpe(1, v) == 0.0
    assert expected_max_sharpe(10, v) < expected_max_sharpe(100, v) < expected_max_sharpe(1000, v)


def test_dsr_of_a_lucky_winner_is_low_and_of_a_real_edge_high():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, size=(1000, 200))             # 200 trials without skill
    sharpes = np.array([sharpe(noise[:, k]) for k in range(noise.shape[1])])
    lucky = deflated_sharpe(noise[:, int(np.argmax(sharpes))], n_trials=200, trial_sharpes=sharpes)
    assert lucky.probability < 0.5
    edge = noise[:, 0] + 0.002                                # a real 0.2 %/day edge (Sharpe ~0.2/day)
    real = deflated_sharpe(edge, n_trials=200, trial_sharpes=sharpes)
    assert real.probability > 0.99
    # The same winner is less credible the more trials it was picked from.
    few = deflated_sharpe(noise[:, int(np.argmax(sharpes))], n_trials=2, sharpe_variance=float(sharpes.var(ddof=1)))
    assert few.probability > lucky.probability


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample():
    # Two strategies on two blocks: A wins the first block, B the second. Whichever wins in
    # sample is the worse out of sample, every time.
    t = 200
    a = np.r_[np.full(t // 2, 0.01), np.full(t // 2, -0.01)] + np.tile([0.001, -0.001], t // 2)
    b = -a
    result = probability_of_overfitting(np.c_[a, b], n_splits=2)
    assert result.n_combinations == 2
    assert result.pbo == 1.0 and result.probability_of_loss == 1.0


def test_pbo_is_near_zero_for_a_persistent_edge():
    rng = np.random.default_rng(3)
    m = rng.normal(0, 0.01, size=(2000, 30))
    m[:, 7] += 0.004                                           # one strategy with a lasting edge
    result = probability_of_overfitting(m, n_splits=10)
    assert result.n_combinations == math.comb(10, 5)
    assert result.pbo < 0.02 and result.probability_of_loss < 0.02


def test_pbo_of_pure_noise_is_about_one_half():
    # Without skill the in-sample winner's out-of-sample rank is uniform: PBO ≈ 0.5 on average.
    pbos = [probability_of_overfitting(np.random.default_rng(s).normal(0, 0.01, size=(800, 40)),
                                       n_splits=8).pbo for s in range(12)]
    assert 0.35 < float(np.mean(pbos)) < 0.65


def test_pbo_matches_a_direct_computation():
    """The block-sum shortcut equals Sharpe ratios computed from the concatenated blocks."""
    from itertools import combinations

    rng = np.random.default_rng(11)
    m = rng.normal(0.0002, 0.01, size=(120, 6))
    s = 6
    result = probability_of_overfitting(m, n_splits=s)
    blocks = np.array_split(np.arange(120), s)
    logits = []
    for chosen in combinations(range(s), s // 2):
        ins = np.concatenate([blocks[k] for k in chosen])
        out = np.concatenate([blocks[k] for k in range(s) if k not in chosen])
        is_sr = [sharpe(m[ins, j]) for j in range(6)]
        oos_sr = np.array([sharpe(m[out, j]) for j in range(6)])
        best = int(np.argmax(is_sr))
        rank = int((oos_sr < oos_sr[best]).sum()) + 1
        w = rank / 7
        logits.append(math.log(w / (1 - w)))
    assert np.allclose(result.logits, logits)
    assert result.pbo == pytest.approx(float(np.mean(np.array(logits) <= 0)))


@pytest.mark.parametrize("bad", [dict(n_splits=3), dict(n_splits=0)])
def test_pbo_refuses_bad_splits(bad):
    with pytest.raises(ValueError):
        probability_of_overfitting(np.zeros((100, 3)), **bad)


def test_pbo_refuses_too_little_data():
    with pytest.raises(ValueError, match="too few"):
        probability_of_overfitting(np.zeros((10, 3)), n_splits=16)
    with pytest.raises(ValueError, match="at least 2 trials"):
        probability_of_overfitting(np.zeros((100, 1)))


def test_pbo_in_chunks_equals_pbo_at_once(monkeypatch):
    from services.engine.optimize import overfitting

    m = np.random.default_rng(5).normal(0, 0.01, size=(400, 25))
    whole = probability_of_overfitting(m, n_splits=8)
    monkeypatch.setattr(overfitting, "_CHUNK_CELLS", 60)  # a few combinations per step
    chunked = probability_of_overfitting(m, n_splits=8)
    assert np.array_equal(whole.logits, chunked.logits) and whole.pbo == chunked.pbo
    assert np.array_equal(whole.oos_performance, chunked.oos_performance)
