"""How likely a sweep's winner is a fluke: the Deflated Sharpe Ratio and the Probability of
Backtest Overfitting.

- **Deflated Sharpe Ratio** — D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
  Management 40(5), 2014. The probability that the winner's true Sharpe ratio is above the
  best one expected from `n_trials` strategies with no skill (the Probabilistic Sharpe Ratio,
  Bailey & López de Prado 2012, evaluated at that expected maximum), allowing for the returns'
  skewness and kurtosis and the length of the record.
- **Probability of Backtest Overfitting** by Combinatorially Symmetric Cross-Validation —
  D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4), 2017. The trials' return series are cut
  into S blocks; for every way of choosing S/2 blocks as in-sample, the in-sample winner's rank
  out of sample is noted; PBO is how often that rank is in the bottom half (logit <= 0).

Sharpe ratios here are per period (per day for daily returns), not annualized: the formulas
count observations. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_CHUNK_CELLS = 1 << 22  # (combinations × trials) values per step of the CSCV loop
_N = NormalDist()


def sharpe(returns: np.ndarray) -> float:
    """Per-period Sharpe ratio of one return series (mean / sample standard deviation)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return float("nan")
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else float("nan")


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """The expected largest Sharpe ratio of `n_trials` independent strategies without skill whose
    Sharpe ratios vary with `sharpe_variance` (Bailey & López de Prado 2014, eq. for SR0; the
    false strategy theorem): sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))."""
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    if n_trials == 1 or sharpe_variance <= 0:
        return 0.0
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials)
                                         + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n_trials * math.e)))


def probabilistic_sharpe(sharpe_ratio: float, benchmark: float, n_obs: int, skewness: float = 0.0,
                         kurtosis: float = 3.0) -> float:
    """P(true Sharpe > benchmark) given an estimate from `n_obs` returns with this skewness and
    (non-excess) kurtosis (Bailey & López de Prado 2012, "The Sharpe Ratio Efficient Frontier")."""
    if n_obs < 2 or not math.isfinite(sharpe_ratio):
        return float("nan")
    spread = 1 - skewness * sharpe_ratio + (kurtosis - 1) / 4 * sharpe_ratio ** 2
    if spread <= 0:
        return float("nan")
    return _N.cdf((sharpe_ratio - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread))


@dataclass(frozen=True)
class DeflatedSharpe:
    sharpe: float            # the winner's per-period Sharpe ratio
    expected_max: float      # SR0: the best expected from n_trials without skill
    n_trials: int
    n_obs: int
    skewness: float
    kurtosis: float
    probability: float       # DSR: P(the winner's true Sharpe > SR0)


def deflated_sharpe(returns: np.ndarray, n_trials: int, trial_sharpes: np.ndarray | None = None,
                    sharpe_variance: float | None = None) -> DeflatedSharpe:
    """The Deflated Sharpe Ratio of a winner's per-period `returns`, chosen among `n_trials`.

    The variance of the trials' Sharpe ratios comes from `trial_sharpes` (every trial's
    per-period Sharpe) or is given as `sharpe_variance`."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if sharpe_variance is None:
        if trial_sharpes is None:
            raise ValueError("give trial_sharpes or sharpe_variance")
        s = np.asarray(trial_sharpes, dtype=float)
        s = s[np.isfinite(s)]
        sharpe_variance = float(s.var(ddof=1)) if s.size > 1 else 0.0
    sr = sharpe(r)
    if r.size > 2 and r.std() > 0:
        z = (r - r.mean()) / r.std()
        skew, kurt = float((z ** 3).mean()), float((z ** 4).mean())
    else:
        skew, kurt = 0.0, 3.0
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return DeflatedSharpe(sr, sr0, n_trials, int(r.size), skew, kurt,
                          probabilistic_sharpe(sr, sr0, int(r.size), skew, kurt))


@dataclass(frozen=True)
class Overfitting:
    pbo: float                        # P(the in-sample winner is below the median out of sample)
    logits: np.ndarray                # λ per combination: ln(ω / (1 - ω)), ω the OOS relative rank
    is_performance: np.ndarray        # the in-sample winner's Sharpe, per combination
    oos_performance: np.ndarray       # ... and its out-of-sample Sharpe
    degradation_slope: float          # OLS slope of OOS on IS performance (negative: overfit)
    probability_of_loss: float        # P(the winner's OOS Sharpe < 0)
    n_splits: int
    n_combinations: int


_COLUMNS = 512


def probability_of_overfitting(returns: np.ndarray, n_splits: int = 16, max_combinations: int = 20_000,
                               seed: int = 0) -> Overfitting:
    """PBO by CSCV over a (T observations × N trials) matrix of per-period returns.

    The rows are cut into `n_splits` (even) contiguous blocks; every choice of half of them is
    an in-sample set, the rest its out-of-sample set (C(S, S/2) combinations; above
    `max_combinations`, that many chosen at random with `seed`). Performance is the Sharpe ratio
    over the chosen blocks, computed from per-block sums, so a combination costs O(S·N)."""
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("returns must be a (observations × trials) matrix with at least 2 trials")
    if n_splits < 2 or n_splits % 2:
        raise ValueError("n_splits must be an even number >= 2")
    t, n = m.shape
    if t < 2 * n_splits:
        raise ValueError(f"{t} observations are too few for {n_splits} splits (need at least {2 * n_splits})")
    bounds = np.linspace(0, t, n_splits + 1).astype(int)
    count = np.diff(bounds).astype(float)                                        # (S,)
    total = np.empty((n_splits, n))                                              # (S, N)
    squares = np.empty((n_splits, n))
    for lo in range(0, n, _COLUMNS):  # trials a few at a time: no full-size temporaries
        part = m[:, lo:lo + _COLUMNS]
        part = np.where(np.isfinite(part), part, 0.0)
        total[:, lo:lo + _COLUMNS] = np.add.reduceat(part, bounds[:-1], axis=0)
        squares[:, lo:lo + _COLUMNS] = np.add.reduceat(part * part, bounds[:-1], axis=0)

    half = n_splits // 2
    n_all = math.comb(n_splits, half)
    if n_all <= max_combinations:
        chosen = np.array(list(combinations(range(n_splits), half)), dtype=np.int64)
    else:
        # Distinct random halves: random orderings of the blocks, their first halves sorted.
        rng = np.random.default_rng(seed)
        draws = np.sort(np.argsort(rng.random((max_combinations * 2, n_splits)), axis=1)[:, :half], axis=1)
        _, first = np.unique(draws, axis=0, return_index=True)
        chosen = draws[np.sort(first)[:max_combinations]].astype(np.int64)  # in draw order: unbiased
    mask = np.zeros((len(chosen), n_splits), dtype=bool)
    mask[np.arange(len(chosen))[:, None], chosen] = True

    def perf(sel: np.ndarray) -> np.ndarray:                                     # (C, N) Sharpe
        k = sel.astype(float)
        nobs = k @ count
        s1 = k @ total
        s2 = k @ squares
        mean = s1 / nobs[:, None]
        var = (s2 - nobs[:, None] * mean ** 2) / (nobs[:, None] - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = mean / np.sqrt(np.maximum(var, 0.0))
        return np.where(np.isfinite(out), out, -np.inf)

    # In chunks of combinations: a (combinations × trials) matrix for 12,870 × 10,000 would be 1 GB.
    step = max(1, _CHUNK_CELLS // n)
    is_best = np.empty(len(mask))
    winner_oos = np.empty(len(mask))
    rank = np.empty(len(mask), dtype=np.int64)
    for lo in range(0, len(mask), step):
        part = mask[lo:lo + step]
        is_perf, oos_perf = perf(part), perf(~part)
        best = np.argmax(is_perf, axis=1)
        rows = np.arange(len(best))
        is_best[lo:lo + step] = is_perf[rows, best]
        winner_oos[lo:lo + step] = won = oos_perf[rows, best]
        # Its rank among the trials out of sample (1 = worst … N = best), ties counted below.
        rank[lo:lo + step] = (oos_perf < won[:, None]).sum(axis=1) + 1
    omega = rank / (n + 1.0)
    logits = np.log(omega / (1 - omega))
    finite = np.isfinite(is_best) & np.isfinite(winner_oos)
    slope = float(np.polyfit(is_best[finite], winner_oos[finite], 1)[0]) if finite.sum() > 2 else float("nan")
    return Overfitting(pbo=float((logits <= 0).mean()), logits=logits, is_performance=is_best,
                       oos_performance=winner_oos, degradation_slope=slope,
                       probability_of_loss=float((winner_oos < 0).mean()), n_splits=n_splits,
                       n_combinations=len(chosen))
