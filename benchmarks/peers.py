"""The peer libraries' versions of our bundled SMA crossover (bench-only dependencies)."""

from __future__ import annotations


def backtesting_sma_cross():
    """backtesting.py's SmaCross example: SMA 10/20 crossover, long on cross above, short below."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import crossover

    def sma(values, n):
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self):
            self.sma1 = self.I(sma, self.data.Close, 10)
            self.sma2 = self.I(sma, self.data.Close, 20)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.sell()

    return SmaCross



def backtesting_sma_cross_params():
    """SmaCross with its periods as class parameters, for `Backtest.optimize` (a module-level
    class: backtesting.py pickles it to its worker processes)."""
    from benchmarks.peer_smacross import SmaCross

    return SmaCross
