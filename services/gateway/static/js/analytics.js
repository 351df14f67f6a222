// The run view's Analytics tab: a finished run the way a quant reads it, from GET
// /backtests/{id}/analytics (hindsight.v1.Analytics, protos/hindsight/v1/analytics.proto).
//
// Monthly returns as a years × months heatmap (the year's return in the last column), rolling
// Sharpe and volatility over a chosen window (a new window is fetched), the daily returns'
// histogram with the fitted normal and its figures, the closed trades as a scatter (P&L by
// duration or by entry time, coloured by side or exit reason; a click opens the trade's day in
// the run view), the drawdown periods, and P&L by weekday, entry hour and exit reason. Each
// picture has a CSV button: exactly its data, from the API's JSON, with a header row.
//
// The answer is fetched and parsed in a Web Worker (analytics-data.js) and the sections are
// built one task each, so a decade's run (~50,000 trades) costs the page no long task.

import { ApiError } from './api.js';
import { fetchAnalytics, TRADE_FIELDS, tradeAt, transport } from './analytics-data.js';
import { csvButton, fileSafe } from './csv.js';
import { el, fmtInt, fmtNum, fmtSigned, signClass } from './dom.js';
import { color, Histogram, LineChart, num, swatch } from './plot.js';
import { fmtMinutes, TradeScatter } from './scatter.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const WINDOWS = [21, 42, 63, 126, 252];
export const BINS = [20, 50, 100];
const DEFAULT_WINDOW = 63;
const DEFAULT_BINS = 50;
const WAITING = 'Analytics are available when the run has finished.';
const FAILED_PRECONDITION = 9; // google.rpc.Code
const RETRIES = 6;
const CACHED = 3; // answers kept for the run shown

// Percent with two decimals and a sign ("+1.23", "-0.40"); '—' when not a number.
export function fmtRet(v) {
  const n = num(v);
  return Number.isFinite(n) ? `${n > 0 ? '+' : ''}${n.toFixed(2)}` : '—';
}

const nextTask = () => new Promise((resolve) => { setTimeout(resolve, 0); });

// A heatmap cell's background: green up, red down, stronger further from zero.
function shade(v, scale) {
  if (!Number.isFinite(v) || !scale) return '';
  const a = 0.12 + 0.68 * Math.min(1, Math.abs(v) / scale);
  return v > 0 ? `rgba(var(--up-rgb), ${a.toFixed(3)})` : v < 0 ? `rgba(var(--down-rgb), ${a.toFixed(3)})` : '';
}

function select(testid, label, options, value) {
  return el('label', { class: 'inline-select' }, label, ' ',
    el('select', { dataset: { testid } }, ...options.map(([v, text]) => el('option', { value: String(v), text, selected: v === value }))));
}

const GROUPS = [
  ['weekday', 'pnl_by_weekday', 'P&L by weekday', 'Day', 'pnl-by-weekday'],
  ['hour', 'pnl_by_entry_hour', 'P&L by entry hour', 'Hour', 'pnl-by-entry-hour'],
  ['exit', 'exit_reasons', 'Exit reasons', 'Exit reason', 'exit-reasons'],
];
const GROUP_FIELDS = ['key', 'trades', 'pnl', 'avg_pnl', 'win_rate_pct', 'avg_duration_minutes'];
const DRAWDOWN_FIELDS = ['start', 'trough', 'recovery', 'depth_pct', 'length_days', 'decline_days', 'recovery_days'];
const PERIOD_FIELDS = ['year', 'month', 'return_pct', 'pnl', 'trading_days', 'trades'];

export class AnalyticsView {
  /** @param {object} hooks onOpenTrade(trade): show a trade (TradePoint fields) in the run view */
  constructor(root, { onOpenTrade }) {
    this.root = root;
    this.onOpenTrade = onOpenTrade;
    this.id = null;
    this.finished = false;
    this.visible = false;
    this.data = null;          // the Analytics shown (its trades as columns)
    this.shownKey = '';        // what `data` was fetched with
    this.cache = new Map();    // key → Promise<Analytics>, for the run shown (the last CACHED)
    this.seq = 0;
    this.pending = '';         // the key being fetched and drawn
    this._build();
  }

  // ---- the run and the tab --------------------------------------------------------------

  // Another run: nothing of the previous one stays.
  setRun(id) {
    if (id === this.id) return;
    this.id = id;
    this.finished = false;
    this.data = null;
    this.shownKey = '';
    this.cache = new Map();
    this.seq++;
    this.pending = '';
    this.body.hidden = true;
    this.summary.textContent = '';
    delete this.root.dataset.window;
    delete this.root.dataset.bins;
    this._state('idle', '');
  }

  // The run is over (completed, failed or cancelled): its analytics can be asked for.
  setFinished(finished) {
    if (!finished || this.finished) return;
    this.finished = true;
    this._maybeLoad();
  }

  show(visible) {
    this.visible = visible;
    this.root.hidden = !visible;
    this._maybeLoad();
  }

  // How the analytics shown were fetched and parsed: 'worker' (a Web Worker) or 'page'.
  get transport() {
    return transport();
  }

  get key() {
    return `${this.window}|${this.bins}`;
  }

  get window() {
    return Number(this.windowSelect.value) || DEFAULT_WINDOW;
  }

  get bins() {
    return Number(this.binsSelect.value) || DEFAULT_BINS;
  }

  _maybeLoad() {
    if (!this.visible) return;
    if (!this.id) {
      this._state('idle', 'Open a run (Earlier runs, or start one) to see its analytics once it has finished.');
      return;
    }
    if (!this.finished) {
      this._state('waiting', WAITING);
      return;
    }
    if ((this.shownKey !== this.key || !this.data) && this.pending !== this.key) this.load();
  }

  async load() {
    const id = this.id;
    const key = this.key;
    const mine = ++this.seq;
    this.pending = key;
    try {
      await this._load(id, key, mine);
    } finally {
      if (mine === this.seq) this.pending = '';
    }
  }

  async _load(id, key, mine) {
    this._state('loading', this.data ? 'Loading…' : `Loading the analytics of ${id}…`);
    let data;
    for (let attempt = 0; ; attempt++) {
      if (!this.cache.has(key)) {
        const p = fetchAnalytics(id, { window: this.window, bins: this.bins });
        this.cache.set(key, p);
        // A decade's answer holds ~50,000 trades: the last few windows and bin counts only.
        for (const old of this.cache.keys()) if (this.cache.size > CACHED) this.cache.delete(old);
        p.catch(() => this.cache.get(key) === p && this.cache.delete(key));
      }
      try {
        data = await this.cache.get(key);
        break;
      } catch (err) {
        if (mine !== this.seq) return;
        const early = err instanceof ApiError && err.status === 400 && err.body?.code === FAILED_PRECONDITION;
        // The stream's terminal event can reach the page a moment before the engine's index
        // says the run is over: ask again a few times before saying it is not.
        if (early && attempt < RETRIES) {
          await new Promise((resolve) => { setTimeout(resolve, 250 * (attempt + 1)); });
          if (mine !== this.seq) return;
          continue;
        }
        if (early) this._state('waiting', WAITING);
        else {
          this._state('error', err instanceof ApiError && err.status === 404 ? `Backtest ${id} not found (expired or deleted).`
            : `Could not load analytics: ${err.message}`);
        }
        return;
      }
    }
    if (mine !== this.seq) return;
    this.data = data;
    this.shownKey = key;
    await this._render(data, mine);
  }

  _state(state, message) {
    this.root.dataset.state = state;
    this.status.textContent = message;
    this.status.classList.toggle('error', state === 'error');
    this.status.hidden = !message;
  }

  // ---- the page -------------------------------------------------------------------------

  _build() {
    const file = (name) => `${fileSafe(this.id)}-${name}.csv`;
    this.status = el('p', { class: 'run-message an-status', role: 'status', dataset: { testid: 'an-status' } });
    this.summary = el('span', { class: 'hint', dataset: { testid: 'an-summary' } });

    // monthly returns
    this.monthly = el('table', { class: 'monthly', dataset: { testid: 'an-monthly' } });
    const monthlyPanel = el('section', { class: 'panel an-wide an-monthly', 'aria-labelledby': 'an-monthly-h' },
      el('h2', { id: 'an-monthly-h' }, 'Monthly returns %', el('span', { class: 'hint', text: '(compounded; the year in the last column)' }),
        el('span', { class: 'spacer' }),
        csvButton('an-csv-monthly', () => this.data && {
          filename: file('monthly-returns'), header: PERIOD_FIELDS,
          rows: [...this.data.monthly_returns, ...this.data.yearly_returns].map((p) => PERIOD_FIELDS.map((k) => p[k])),
        }, 'Monthly returns, then each year as month 0, as CSV')),
      el('div', { class: 'table-wrap' }, this.monthly));

    // rolling Sharpe and volatility
    this.windowSelect = select('an-window', 'window', WINDOWS.map((w) => [w, `${w} days`]), DEFAULT_WINDOW).querySelector('select');
    this.windowSelect.addEventListener('change', () => this._maybeLoad());
    const sharpeCanvas = el('canvas', { dataset: { testid: 'an-rolling-sharpe' }, role: 'img', 'aria-label': 'Rolling Sharpe ratio' });
    const volCanvas = el('canvas', { dataset: { testid: 'an-rolling-vol' }, role: 'img', 'aria-label': 'Rolling volatility' });
    const sharpeTip = el('div', { class: 'plot-tip', hidden: true });
    const volTip = el('div', { class: 'plot-tip', hidden: true });
    this.rollingNote = el('p', { class: 'muted', hidden: true, dataset: { testid: 'an-rolling-note' } });
    const rollingPanel = el('section', { class: 'panel', 'aria-labelledby': 'an-rolling-h' },
      el('h2', { id: 'an-rolling-h' }, 'Rolling Sharpe & volatility', el('span', { class: 'spacer' }),
        this.windowSelect.parentElement,
        csvButton('an-csv-rolling', () => this.data && {
          filename: file(`rolling-${this.data.rolling_window_days}d`), header: ['date', 'sharpe', 'volatility_pct'],
          rows: this.data.rolling.map((p) => [p.date, p.sharpe, p.volatility_pct]),
        })),
      this.rollingNote,
      el('div', { class: 'plot' }, sharpeCanvas, sharpeTip),
      el('div', { class: 'plot' }, volCanvas, volTip));
    this.sharpe = new LineChart(sharpeCanvas, sharpeTip, { height: 170, yLabel: 'Sharpe', zero: true });
    this.vol = new LineChart(volCanvas, volTip, { height: 130, yLabel: 'vol. %', unit: ' %' });

    // daily returns
    this.binsSelect = select('an-bins', 'bins', BINS.map((b) => [b, String(b)]), DEFAULT_BINS).querySelector('select');
    this.binsSelect.addEventListener('change', () => this._maybeLoad());
    const histCanvas = el('canvas', { dataset: { testid: 'an-histogram' }, role: 'img', 'aria-label': 'Histogram of daily returns with the fitted normal distribution' });
    const histTip = el('div', { class: 'plot-tip', hidden: true });
    this.figures = el('dl', { class: 'figures', dataset: { testid: 'an-figures' } });
    const distPanel = el('section', { class: 'panel', 'aria-labelledby': 'an-dist-h' },
      el('h2', { id: 'an-dist-h' }, 'Daily returns', el('span', { class: 'hint' }, '(bars; ', el('span', { class: 'curve-key' }), 'normal)'),
        el('span', { class: 'spacer' }), this.binsSelect.parentElement,
        csvButton('an-csv-histogram', () => {
          const d = this.data?.returns_distribution;
          return d && {
            filename: file('returns-histogram'), header: ['bin_start_pct', 'bin_end_pct', 'days', 'normal_days'],
            rows: d.counts.map((c, i) => [d.bin_edges[i], d.bin_edges[i + 1], c, d.normal_counts[i]]),
          };
        })),
      el('div', { class: 'dist' }, el('div', { class: 'plot' }, histCanvas, histTip), this.figures));
    this.histogram = new Histogram(histCanvas, histTip, { height: 230, xLabel: 'daily return %', curveLabel: 'normal' });

    // trades
    const scatterCanvas = el('canvas', { dataset: { testid: 'an-scatter' }, role: 'img', 'aria-label': 'Closed trades: P&L against duration or entry time' });
    const scatterTip = el('div', { class: 'plot-tip', hidden: true, dataset: { testid: 'an-scatter-tooltip' } });
    this.modeButtons = ['duration', 'hour'].map((mode) => el('button', {
      type: 'button', class: 'seg', 'aria-pressed': String(mode === 'duration'), dataset: { testid: `an-scatter-x-${mode}`, mode },
      onclick: () => this._scatterMode(mode),
    }, mode === 'duration' ? 'duration' : 'entry time'));
    this.colorSelect = select('an-scatter-color', 'colour', [['side', 'side'], ['exit_reason', 'exit reason']], 'side').querySelector('select');
    this.colorSelect.addEventListener('change', () => {
      this.scatter.configure({ colorBy: this.colorSelect.value });
      this._legend();
    });
    this.legendBox = el('div', { class: 'an-legend', dataset: { testid: 'an-scatter-legend' } });
    this.tradesCount = el('span', { class: 'count', text: '0' });
    const scatterPanel = el('section', { class: 'panel an-wide', 'aria-labelledby': 'an-scatter-h' },
      el('h2', { id: 'an-scatter-h' }, 'Trades', this.tradesCount, el('span', { class: 'hint', text: '(P&L; click a point to open its day)' }),
        el('span', { class: 'spacer' }), el('span', { class: 'seg-group' }, 'x:', ...this.modeButtons), this.colorSelect.parentElement,
        csvButton('an-csv-trades', () => {
          const t = this.data?.trades;
          return t && { filename: file('trades'), header: TRADE_FIELDS, count: t.n, rows: (i) => { const p = tradeAt(t, i); return TRADE_FIELDS.map((k) => p[k]); } };
        }, 'Every closed trade of the scatter as CSV')),
      el('div', { class: 'plot' }, scatterCanvas, scatterTip), this.legendBox);
    this.scatter = new TradeScatter(scatterCanvas, scatterTip, (i) => this.onOpenTrade?.(tradeAt(this.data.trades, i)));

    // drawdowns
    this.drawdowns = el('tbody', { dataset: { testid: 'an-drawdowns' } });
    this.drawdownCount = el('span', { class: 'count', text: '0' });
    const ddPanel = el('section', { class: 'panel an-wide', 'aria-labelledby': 'an-dd-h' },
      el('h2', { id: 'an-dd-h' }, 'Drawdowns', this.drawdownCount, el('span', { class: 'hint', text: '(deepest first; days are trading days)' }),
        el('span', { class: 'spacer' }),
        csvButton('an-csv-drawdowns', () => this.data && {
          filename: file('drawdowns'), header: DRAWDOWN_FIELDS, rows: this.data.drawdowns.map((d) => DRAWDOWN_FIELDS.map((k) => d[k])),
        })),
      el('div', { class: 'table-wrap' }, el('table', { class: 'drawdowns', dataset: { testid: 'an-drawdown-table' } },
        el('thead', {}, el('tr', {}, ...['#', 'Start', 'Trough', 'Recovery'].map((h) => el('th', { scope: 'col', text: h })),
          ...['Depth %', 'Length', 'Decline', 'Recovery days'].map((h) => el('th', { scope: 'col', class: 'num', text: h })))),
        this.drawdowns)));

    // P&L by weekday, entry hour, exit reason
    this.groups = {};
    const groupPanels = GROUPS.map(([name, field, title, keyLabel, slug]) => {
      const body = el('tbody', { dataset: { testid: `an-${name}` } });
      this.groups[name] = body;
      return el('section', { class: 'panel', 'aria-labelledby': `an-${name}-h` },
        el('h2', { id: `an-${name}-h` }, title, el('span', { class: 'spacer' }),
          csvButton(`an-csv-${name}`, () => this.data && {
            filename: file(slug), header: GROUP_FIELDS, rows: this.data[field].map((g) => GROUP_FIELDS.map((k) => g[k])),
          })),
        el('div', { class: 'table-wrap' }, el('table', { class: 'groups' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: keyLabel }),
            ...['Trades', 'P&L', 'Avg P&L', 'Win %', 'Avg hold'].map((h) => el('th', { scope: 'col', class: 'num', text: h })))),
          body)));
    });

    this.body = el('div', { class: 'an-body', hidden: true },
      el('div', { class: 'an-grid' }, monthlyPanel, rollingPanel, distPanel, scatterPanel, ddPanel),
      el('div', { class: 'an-groups' }, ...groupPanels));
    this.root.replaceChildren(el('div', { class: 'an-head' }, this.summary), this.status, this.body);
    this.root.dataset.state = 'idle';
  }

  // Each section in a task of its own (a decade's run: no long task), then 'ready'.
  async _render(a, mine) {
    const steps = [() => this._monthly(a), () => this._rolling(a), () => this._distribution(a), () => this._drawdowns(a),
      () => this._trades(a), () => this._groups(a)];
    this.body.hidden = false;
    for (const step of steps) {
      await nextTask(); // the first: after the task that brought the answer
      if (mine !== this.seq) return;
      step();
    }
    await nextTask();
    if (mine !== this.seq) return;
    const d = a.returns_distribution || {};
    this.summary.textContent = `${this.id} · ${fmtInt(num(d.days))} days · ${fmtInt(a.trades.n)} trades · `
      + `${a.rolling_window_days}-day window${a.cached ? ' · from the run\'s cache' : ''}`;
    this.root.dataset.window = String(a.rolling_window_days);
    this.root.dataset.bins = String((d.counts || []).length);
    this._state('ready', '');
  }

  _monthly(a) {
    const years = new Map(); // year → {months: [12], total}
    const row = (y) => {
      if (!years.has(y)) years.set(y, { months: new Array(12).fill(null), total: null });
      return years.get(y);
    };
    let scale = 0;
    let yearScale = 0;
    for (const p of a.monthly_returns || []) {
      row(p.year).months[p.month - 1] = p;
      scale = Math.max(scale, Math.abs(num(p.return_pct)) || 0);
    }
    for (const p of a.yearly_returns || []) {
      row(p.year).total = p;
      yearScale = Math.max(yearScale, Math.abs(num(p.return_pct)) || 0);
    }
    const cell = (p, label, testid, s) => {
      if (!p) return el('td', { class: 'mcell empty' });
      const v = num(p.return_pct);
      const td = el('td', {
        class: `mcell num${Math.abs(v) / (s || 1) > 0.55 ? ' strong' : ''}`,
        title: `${label}: ${fmtRet(v)} % · P&L ${fmtSigned(p.pnl)} · ${p.trading_days} days · ${p.trades} trades`,
        dataset: { testid, year: String(p.year), month: String(p.month), value: String(p.return_pct) },
      }, fmtRet(v));
      td.style.background = shade(v, s);
      return td;
    };
    const rows = [...years.keys()].sort((x, y) => x - y).map((y) => {
      const r = years.get(y);
      return el('tr', { dataset: { year: String(y) } }, el('th', { scope: 'row', text: String(y) }),
        ...r.months.map((p, m) => cell(p, `${MONTHS[m]} ${y}`, 'an-month', scale)),
        cell(r.total, String(y), 'an-year', yearScale));
    });
    this.monthly.replaceChildren(
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: '' }), ...MONTHS.map((m) => el('th', { scope: 'col', class: 'num', text: m })),
        el('th', { scope: 'col', class: 'num year-col', text: 'Year' }))),
      el('tbody', {}, ...rows));
  }

  _rolling(a) {
    const pts = a.rolling || [];
    const dates = pts.map((p) => p.date);
    this.sharpe.set(dates, [{ name: 'Sharpe', color: color('--accent'), values: pts.map((p) => num(p.sharpe)) }]);
    this.vol.set(dates, [{ name: 'volatility', color: color('--warn'), values: pts.map((p) => num(p.volatility_pct)) }]);
    this.sharpe.canvas.dataset.window = String(a.rolling_window_days);
    this.rollingNote.hidden = pts.length > 0;
    this.rollingNote.textContent = pts.length ? '' : `The run has fewer trading days than the ${a.rolling_window_days}-day window: choose a shorter one.`;
  }

  _distribution(a) {
    const d = a.returns_distribution || {};
    this.histogram.set((d.bin_edges || []).map(num), (d.counts || []).map(num), (d.normal_counts || []).map(num));
    const p = num(d.jarque_bera_p_value);
    const figures = [
      ['days', 'days', fmtInt(num(d.days))],
      ['mean', 'mean', `${fmtNum(num(d.mean_pct))} %`],
      ['std', 'std. dev.', `${fmtNum(num(d.std_pct))} %`],
      ['skew', 'skew', fmtNum(num(d.skew))],
      ['kurtosis', 'excess kurtosis', fmtNum(num(d.kurtosis))],
      ['min', 'worst day', `${fmtNum(num(d.min_pct))} %`],
      ['max', 'best day', `${fmtNum(num(d.max_pct))} %`],
      ['var', 'VaR 95 %', `${fmtNum(num(d.var_95_pct))} %`],
      ['cvar', 'CVaR 95 %', `${fmtNum(num(d.cvar_95_pct))} %`],
      ['jb', 'Jarque-Bera', fmtNum(num(d.jarque_bera))],
      ['jb-p', 'JB p-value', Number.isFinite(p) ? (p < 0.0001 ? p.toExponential(1) : String(Math.round(p * 10000) / 10000)) : '—'],
    ];
    this.figures.replaceChildren(...figures.flatMap(([k, label, value]) => [el('dt', { text: label }),
      el('dd', { dataset: { testid: `an-fig-${k}` }, text: value.startsWith('—') ? '—' : value })]));
    const reading = Number.isFinite(p) ? (p < 0.05 ? 'not normal (p < 0.05)' : 'consistent with normal') : '';
    if (reading) this.figures.append(el('dt', { text: 'reading' }), el('dd', { text: reading }));
  }

  _trades(a) {
    this.tradesCount.textContent = fmtInt(a.trades.n);
    this.scatter.set(a.trades);
    this._legend();
  }

  _scatterMode(mode) {
    for (const b of this.modeButtons) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
    this.scatter.configure({ mode });
  }

  _legend() {
    this.legendBox.replaceChildren(...this.scatter.legend().map((c) => el('span', { class: 'key', dataset: { testid: 'an-legend-item' } },
      swatch(c.color), `${c.label} `, el('span', { class: 'muted', text: fmtInt(c.count) }))));
  }

  _drawdowns(a) {
    const list = a.drawdowns || [];
    this.drawdownCount.textContent = fmtInt(list.length);
    this.drawdowns.replaceChildren(...(list.length ? list.map((d, i) => el('tr', { dataset: { testid: 'an-drawdown-row' } },
      el('td', { class: 'num', text: String(i + 1) }),
      el('td', { text: d.start }), el('td', { text: d.trough }),
      d.recovery ? el('td', { text: d.recovery }) : el('td', { class: 'muted', text: 'not recovered' }),
      el('td', { class: 'num down', text: fmtRet(d.depth_pct) }),
      el('td', { class: 'num', text: String(d.length_days) }),
      el('td', { class: 'num', text: String(d.decline_days) }),
      el('td', { class: 'num', text: String(d.recovery_days) })))
      : [el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No drawdowns: equity never fell below a peak.' }))]));
  }

  _groups(a) {
    for (const [name, field] of GROUPS) {
      const list = a[field] || [];
      const scale = Math.max(0, ...list.map((g) => Math.abs(num(g.pnl)) || 0));
      this.groups[name].replaceChildren(...(list.length ? list.map((g) => {
        const pnl = num(g.pnl);
        const bar = el('span', { class: `bar ${pnl >= 0 ? 'pos' : 'neg'}` });
        bar.style.width = `${scale ? (Math.abs(pnl) / scale) * 100 : 0}%`;
        return el('tr', { dataset: { testid: 'an-group-row', key: g.key } },
          el('th', { scope: 'row', text: g.key || '(none)' }),
          el('td', { class: 'num', text: fmtInt(g.trades) }),
          el('td', { class: `num pnl ${signClass(pnl)}` }, el('span', { class: 'bar-track' }, bar), fmtSigned(pnl)),
          el('td', { class: `num ${signClass(g.avg_pnl)}`, text: fmtSigned(g.avg_pnl) }),
          el('td', { class: 'num', text: fmtNum(g.win_rate_pct) }),
          el('td', { class: 'num', text: fmtMinutes(num(g.avg_duration_minutes)) }));
      }) : [el('tr', {}, el('td', { colspan: '6', class: 'muted', text: 'No closed trades.' }))]));
    }
  }
}
