// Metric cards: the running totals while a backtest runs, the full metrics once it is done.

import { el, fmtInt, fmtMoney, fmtNum, fmtPct, fmtSigned, signClass } from './dom.js';

// [key, label, value(state) → [text, sign class]]
const CARDS = [
  ['total_return', 'Total return', (s) => pct(s.metrics?.total_return_pct ?? liveReturn(s), true)],
  ['net_pnl', 'Net P&L', (s) => signed(s.overall?.total_pnl ?? s.summary?.realized_pnl)],
  ['final_equity', 'Equity', (s) => [fmtMoney(s.overall?.final_equity ?? s.summary?.equity), '']],
  ['cagr', 'CAGR', (s) => pct(s.metrics?.cagr_pct, true)],
  ['sharpe', 'Sharpe', (s) => plain(s.metrics?.sharpe, true)],
  ['sortino', 'Sortino', (s) => plain(s.metrics?.sortino, true)],
  ['max_drawdown', 'Max drawdown', (s) => pct(s.metrics?.max_drawdown_pct ?? liveDrawdown(s), true)],
  ['win_rate', 'Win rate', (s) => [fmtPct(s.metrics?.win_rate_pct ?? liveWinRate(s)), '']],
  ['profit_factor', 'Profit factor', (s) => plain(s.metrics?.profit_factor)],
  ['trades', 'Trades', (s) => [fmtInt(s.metrics?.total_trades ?? s.trades.length), '']],
  ['expectancy', 'Expectancy', (s) => signed(s.metrics?.expectancy)],
  ['largest_win', 'Largest win', (s) => signed(s.metrics?.largest_win)],
  ['largest_loss', 'Largest loss', (s) => signed(s.metrics?.largest_loss)],
  ['exposure', 'Exposure', (s) => [fmtPct(s.metrics?.exposure_time_pct), '']],
  ['avg_trade', 'Avg trade', (s) => [s.metrics ? `${fmtNum(s.metrics.avg_trade_duration_minutes)} min` : '—', '']],
  ['buy_hold', 'Buy & hold', (s) => pct(s.metrics?.buy_and_hold_return_pct, true)],
];

const plain = (v, color = false) => [fmtNum(v), color ? signClass(v) : ''];
const pct = (v, color = false) => [fmtPct(v, color), color ? signClass(v) : ''];
const signed = (v) => [fmtSigned(v), signClass(v)];

function liveReturn(s) {
  const cap = s.initialCapital;
  const eq = Number(s.summary?.equity);
  return cap && Number.isFinite(eq) ? (eq / cap - 1) * 100 : undefined;
}

// Kept up by the RunState as events arrive: a card never walks every trade or point per frame.
const liveDrawdown = (s) => s.worstDrawdown;
const liveWinRate = (s) => (s.trades.length ? (s.wins / s.trades.length) * 100 : undefined);

export class MetricCards {
  constructor(root) {
    this.values = new Map();
    root.replaceChildren(...CARDS.map(([key, label]) => {
      const value = el('div', { class: 'value', text: '—' });
      this.values.set(key, value);
      return el('div', { class: 'card', role: 'group', 'aria-label': label, dataset: { testid: `metric-${key}` } },
        el('div', { class: 'label', text: label }), value);
    }));
    this.root = root;
  }

  // `final`: the page shows the whole run (data-final="true" once its metrics are in, too).
  update(state, final = true) {
    for (const [key, , fn] of CARDS) {
      const [text, cls] = fn(state);
      const node = this.values.get(key);
      if (node.textContent !== text) {
        node.textContent = text;
        node.title = text;
      }
      const className = `value ${cls}`;
      if (node.className !== className) node.className = className;
    }
    const done = final && state.metrics ? 'true' : 'false';
    if (this.root.dataset.final !== done) this.root.dataset.final = done;
  }
}
