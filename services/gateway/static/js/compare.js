// The Compare view: 2-5 finished runs side by side, from GET /backtests:compare
// (hindsight.v1.Comparison). A picker of the finished runs (checkboxes), then the metrics as a
// table (a row a metric, a column a run; the best of a row marked where higher or lower is
// plainly better) and the equity curves as percent return on one axis of trading days (a line
// a run, faint before its first and after its last day). Both downloadable as CSV.

import { api, request } from './api.js';
import { csvButton, fileSafe } from './csv.js';
import { el, fmtInt, fmtMoney, fmtNum, fmtSigned, signClass, statusName } from './dom.js';
import { LineChart, num, PALETTE, swatch } from './plot.js';

export const MIN_RUNS = 2;
export const MAX_RUNS = 5;
const FINISHED = new Set(['COMPLETED', 'CANCELLED', 'FAILED']);

// [Metrics field, label, +1 higher is better / -1 lower is better / 0 neither, format]
const pct = (v) => (Number.isFinite(v) ? `${fmtNum(v)} %` : fmtInf(v));
const plain = (v) => (Number.isFinite(v) ? fmtNum(v) : fmtInf(v));
const money = (v) => (Number.isFinite(v) ? fmtSigned(v) : fmtInf(v));
const fmtInf = (v) => (v === Infinity ? '∞' : v === -Infinity ? '−∞' : '—');
export const METRICS = [
  ['total_return_pct', 'Total return', 1, pct],
  ['cagr_pct', 'CAGR', 1, pct],
  ['volatility_ann_pct', 'Volatility (annual)', -1, pct],
  ['sharpe', 'Sharpe', 1, plain],
  ['sortino', 'Sortino', 1, plain],
  ['calmar', 'Calmar', 1, plain],
  ['max_drawdown_pct', 'Max drawdown', 1, pct],
  ['max_drawdown_duration_days', 'Max drawdown length (days)', -1, plain],
  ['avg_drawdown_pct', 'Avg drawdown', 1, pct],
  ['avg_drawdown_duration_days', 'Avg drawdown length (days)', -1, plain],
  ['var_95_pct', 'VaR 95 % (a day)', 1, pct],
  ['cvar_95_pct', 'CVaR 95 % (a day)', 1, pct],
  ['best_day_pct', 'Best day', 0, pct],
  ['worst_day_pct', 'Worst day', 1, pct],
  ['total_trades', 'Trades', 0, (v) => fmtInt(v)],
  ['win_rate_pct', 'Win rate', 1, pct],
  ['profit_factor', 'Profit factor', 1, plain],
  ['expectancy', 'Expectancy', 1, money],
  ['sqn', 'SQN', 1, plain],
  ['avg_win', 'Avg win', 0, money],
  ['avg_loss', 'Avg loss', 0, money],
  ['largest_win', 'Largest win', 0, money],
  ['largest_loss', 'Largest loss', 0, money],
  ['max_consecutive_wins', 'Most wins in a row', 0, (v) => fmtInt(v)],
  ['max_consecutive_losses', 'Most losses in a row', 0, (v) => fmtInt(v)],
  ['exposure_time_pct', 'Exposure', 0, pct],
  ['avg_trade_duration_minutes', 'Avg trade (minutes)', 0, plain],
  ['buy_and_hold_return_pct', 'Buy & hold', 0, pct],
  ['initial_capital', 'Initial capital', 0, (v) => fmtMoney(v)],
  ['final_equity', 'Final equity', 0, (v) => fmtMoney(v)],
];
// The runs' own fields, before the metrics in the CSV.
const RUN_FIELDS = ['strategy_id', 'strategy_name', 'symbol', 'start_date', 'end_date'];

export const compareHash = (ids) => `#compare=${ids.map(encodeURIComponent).join(',')}`;

export class CompareView {
  /**
   * @param {object} hooks onOpenBacktest(id): show a run in the backtest view; onCompare(ids):
   *   the Compare button (the address follows, then `open`)
   */
  constructor(root, { onOpenBacktest, onCompare }) {
    this.root = root;
    this.onOpenBacktest = onOpenBacktest;
    this.onCompare = onCompare;
    this.selected = [];         // ids, in the order ticked
    this.shown = null;          // the Comparison drawn
    this.shownIds = [];
    this.seq = 0;
    this._build();
  }

  // The view is shown: the list of runs again; `preselect` (the run open in the backtest view)
  // is ticked when nothing is.
  show(preselect) {
    if (!this.selected.length && preselect) this.selected = [preselect];
    this.refresh();
    this.chart.schedule();
  }

  async refresh() {
    let runs;
    try {
      runs = (await api.list()).backtests || [];
    } catch (err) {
      this.picker.replaceChildren(el('li', { class: 'down', text: `Could not list runs: ${err.message}` }));
      return;
    }
    const finished = runs.filter((bt) => FINISHED.has(statusName(bt.status)));
    this.picker.replaceChildren(...(finished.length ? finished.map((bt) => this._item(bt))
      : [el('li', { class: 'muted', text: 'No finished runs yet.' })]));
    this._sync();
  }

  // Compare these runs (from the address, #compare=a,b).
  open(ids) {
    this.selected = [...new Set(ids)].slice(0, MAX_RUNS);
    this._sync();
    if (this.selected.length < MIN_RUNS) {
      this._say(`Tick ${MIN_RUNS} to ${MAX_RUNS} finished runs, then Compare.`);
      return;
    }
    if (this.shown && this.shownIds.join(',') === this.selected.join(',')) return;
    this.load(this.selected);
  }

  get hash() {
    return this.shownIds.length ? compareHash(this.shownIds) : '#compare';
  }

  async load(ids) {
    const mine = ++this.seq;
    this.root.dataset.state = 'loading';
    this._say(`Comparing ${ids.length} runs…`);
    const q = ids.map((id) => `backtest_ids=${encodeURIComponent(id)}`).join('&');
    let res;
    try {
      res = await request('GET', `api/v1/backtests:compare?${q}`);
    } catch (err) {
      if (mine !== this.seq) return;
      this.root.dataset.state = 'error';
      this._say(`Could not compare: ${err.message}`, true);
      return;
    }
    if (mine !== this.seq) return;
    this.shown = res;
    this.shownIds = ids;
    this._render(res);
    this.root.dataset.state = 'ready';
    this._say('');
  }

  // ---- the picker -----------------------------------------------------------------------

  _item(bt) {
    const c = bt.config || {};
    const status = statusName(bt.status);
    const pnl = bt.summary?.total_pnl;
    const box = el('input', { type: 'checkbox', value: bt.backtest_id, dataset: { testid: 'cmp-pick' },
      'aria-label': `Compare ${c.strategy?.name || bt.strategy_id} on ${c.symbol}, ${c.start_date} to ${c.end_date} (${bt.backtest_id})` });
    return el('li', {}, el('label', { class: 'pick', dataset: { testid: 'cmp-pick-item', id: bt.backtest_id, status } },
      box,
      el('span', { class: `dot ${status}`, title: status }),
      el('span', { class: 'name', text: c.strategy?.name || bt.strategy_id || bt.backtest_id }),
      el('span', { class: `num ${signClass(pnl)}`, text: pnl !== undefined ? fmtSigned(pnl) : status.toLowerCase() }),
      el('span', { class: 'meta', text: `${c.symbol || ''} · ${c.start_date || '…'} → ${c.end_date || '…'} · ${bt.backtest_id}` })));
  }

  _toggle(id, on) {
    this.selected = this.selected.filter((x) => x !== id);
    if (on) this.selected.push(id);
    this._sync();
  }

  // Boxes ticked as `selected`; at MAX_RUNS the others are disabled; Compare needs MIN_RUNS.
  _sync() {
    const full = this.selected.length >= MAX_RUNS;
    for (const box of this.picker.querySelectorAll('input[type=checkbox]')) {
      box.checked = this.selected.includes(box.value);
      box.disabled = full && !box.checked;
    }
    const n = this.selected.length;
    this.button.disabled = n < MIN_RUNS || n > MAX_RUNS;
    this.button.textContent = n >= MIN_RUNS ? `Compare ${n} runs` : 'Compare';
    this.count.textContent = `${n} / ${MAX_RUNS}`;
  }

  _say(text, error = false) {
    this.message.textContent = text;
    this.message.classList.toggle('error', error);
  }

  // ---- the page -------------------------------------------------------------------------

  _build() {
    const file = (what) => `compare-${this.shownIds.map(fileSafe).join('-')}-${what}.csv`;
    this.picker = el('ul', { class: 'runs picker', dataset: { testid: 'cmp-picker' }, 'aria-label': 'Finished runs to compare' });
    this.picker.addEventListener('change', (e) => {
      if (e.target.matches('input[type=checkbox]')) this._toggle(e.target.value, e.target.checked);
    });
    this.button = el('button', { type: 'button', class: 'primary', disabled: true, dataset: { testid: 'cmp-button' } }, 'Compare');
    this.button.addEventListener('click', () => {
      if (this.selected.length >= MIN_RUNS) this.onCompare?.(this.selected);
    });
    this.count = el('span', { class: 'hint', dataset: { testid: 'cmp-count' } });
    const refresh = el('button', { type: 'button', class: 'link', 'aria-label': 'Refresh the list of runs', dataset: { testid: 'cmp-refresh' } }, '↻');
    refresh.addEventListener('click', () => this.refresh());
    const side = el('aside', { class: 'sidebar' }, el('section', { class: 'panel runs-panel cmp-picker', 'aria-labelledby': 'cmp-pick-h' },
      el('h2', { id: 'cmp-pick-h' }, 'Runs to compare', this.count, refresh),
      el('p', { class: 'hint', text: `Tick ${MIN_RUNS} to ${MAX_RUNS} finished runs.` }),
      this.picker,
      el('div', { class: 'buttons' }, this.button)));

    this.title = el('div', { class: 'opt-title', dataset: { testid: 'cmp-title' }, text: 'No comparison open' });
    this.message = el('div', { class: 'run-message', role: 'status', dataset: { testid: 'cmp-message' } });
    this.table = el('table', { class: 'cmp-metrics', dataset: { testid: 'cmp-metrics' } });
    const canvas = el('canvas', { dataset: { testid: 'cmp-equity' }, role: 'img', 'aria-label': 'Equity of each run, percent return' });
    const tip = el('div', { class: 'plot-tip', hidden: true });
    this.legend = el('div', { class: 'an-legend', dataset: { testid: 'cmp-legend' } });
    const main = el('main', { class: 'main', dataset: { testid: 'cmp-main' } },
      el('section', { class: 'panel status-panel', 'aria-label': 'Comparison' }, this.title, this.message),
      el('section', { class: 'panel', 'aria-labelledby': 'cmp-eq-h' },
        el('h2', { id: 'cmp-eq-h' }, 'Equity, % return', el('span', { class: 'hint', text: '(on every trading day of any run)' }),
          el('span', { class: 'spacer' }),
          csvButton('cmp-csv-equity', () => this.shown && {
            filename: file('equity'), header: ['date', ...this.shownIds],
            rows: this.shown.dates.map((d, i) => [d, ...this.shown.backtests.map((b) => b.return_pct[i])]),
          })),
        el('div', { class: 'plot' }, canvas, tip), this.legend),
      el('section', { class: 'panel', 'aria-labelledby': 'cmp-metrics-h' },
        el('h2', { id: 'cmp-metrics-h' }, 'Metrics', el('span', { class: 'hint', text: '(★ the best of a row, where higher or lower is plainly better)' }),
          el('span', { class: 'spacer' }),
          csvButton('cmp-csv-metrics', () => this.shown && {
            filename: file('metrics'), header: ['metric', ...this.shownIds],
            rows: [...RUN_FIELDS.map((k) => [k, ...this.shown.backtests.map((b) => b[k])]),
              ...METRICS.map(([k]) => [k, ...this.shown.backtests.map((b) => b.metrics?.[k])])],
          })),
        el('div', { class: 'table-wrap tall' }, this.table)));
    this.chart = new LineChart(canvas, tip, { height: 320, yLabel: 'return %', zero: true, unit: ' %' });
    this.root.replaceChildren(side, main);
    this.root.dataset.state = 'idle';
  }

  _render(res) {
    const runs = res.backtests || [];
    const name = (b) => b.strategy_name || b.strategy_id || b.backtest_id;
    this.title.textContent = `${runs.length} runs · ${res.dates?.[0] || '…'} → ${res.dates?.[res.dates.length - 1] || '…'}`;
    const head = el('tr', {}, el('th', { scope: 'col', text: 'Metric' }), ...runs.map((b, i) => el('th', {
      scope: 'col', class: 'num run-col', dataset: { testid: 'cmp-run-col', id: b.backtest_id },
    }, swatch(PALETTE[i % PALETTE.length]),
    el('button', { type: 'button', class: 'link', title: 'Open this run', onclick: () => this.onOpenBacktest(b.backtest_id) }, name(b)),
    el('div', { class: 'hint', text: `${b.symbol} · ${b.start_date} → ${b.end_date}` }),
    el('div', { class: 'hint mono', text: b.backtest_id }))));
    const rows = METRICS.map(([key, label, better, fmt]) => {
      const values = runs.map((b) => num(b.metrics?.[key]));
      const usable = values.filter((v) => !Number.isNaN(v));
      let best = NaN;
      if (better && usable.length > 1) {
        const top = better > 0 ? Math.max(...usable) : Math.min(...usable);
        const bottom = better > 0 ? Math.min(...usable) : Math.max(...usable);
        if (top !== bottom) best = top;
      }
      return el('tr', { dataset: { testid: 'cmp-metric-row', metric: key } },
        el('th', { scope: 'row', text: label, title: `${key}${better ? (better > 0 ? ' (higher is better)' : ' (lower is better)') : ''}` }),
        ...values.map((v) => el('td', {
          class: `num${v === best ? ' best' : ''}`, dataset: { best: String(v === best) },
        }, fmt(v), v === best ? ' ★' : '')));
    });
    this.table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
    const series = runs.map((b, i) => ({
      name: name(b), color: PALETTE[i % PALETTE.length], values: (b.return_pct || []).map(num),
      from: b.first_index, to: b.last_index,
    }));
    this.chart.set(res.dates || [], series);
    this.legend.replaceChildren(...runs.map((b, i) => el('span', { class: 'key', dataset: { testid: 'cmp-legend-item', id: b.backtest_id } },
      swatch(PALETTE[i % PALETTE.length]), `${name(b)} `,
      el('span', { class: 'muted', text: `${b.backtest_id} · ${fmtNum(num(b.metrics?.total_return_pct))} %` }))));
  }
}
