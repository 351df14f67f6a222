// The optimization view: start a parameter sweep, follow it live (progress, a heatmap of two
// parameters, the best trials, the Pareto front of two objectives, walk-forward windows and
// their out-of-sample equity, DSR/PBO in plain words), reopen an earlier one, and open any of
// the best trials as an ordinary backtest.
//
// As in main.js, events only update the OptState; the DOM and the canvases are updated in one
// requestAnimationFrame callback from the changes collected since the last one (at most every
// LIVE_FRAME_MS while trials stream in), so 10,000 trials never cost a frame each.

import { api, ApiError } from './api.js';
import { chartsAvailable, MISSING_MESSAGE } from './charts.js';
import { $, el, fmtDuration, fmtInt, fmtNum, signClass } from './dom.js';
import { Heatmap, Scatter } from './heatmap.js';
import { OptimizationStream, optApi } from './opt-api.js';
import { OptState, STATUS } from './opt-state.js';

// [value "metric:direction", label]
const OBJECTIVES = [
  ['sharpe:maximize', 'Sharpe (max)'], ['sortino:maximize', 'Sortino (max)'], ['calmar:maximize', 'Calmar (max)'],
  ['total_return_pct:maximize', 'Total return % (max)'], ['cagr_pct:maximize', 'CAGR % (max)'],
  ['max_drawdown_pct:maximize', 'Max drawdown % (shallowest)'], ['profit_factor:maximize', 'Profit factor (max)'],
  ['win_rate_pct:maximize', 'Win rate % (max)'], ['expectancy:maximize', 'Expectancy (max)'], ['sqn:maximize', 'SQN (max)'],
  ['volatility_ann_pct:minimize', 'Volatility % (min)'], ['total_trades:minimize', 'Trades (fewest)'],
  ['total_trades:maximize', 'Trades (most)'],
];
// Metrics the heatmap can colour by, beside the objectives; volatility: lower is better.
const HEAT_METRICS = ['sharpe', 'total_return_pct', 'max_drawdown_pct', 'total_trades', 'win_rate_pct', 'profit_factor',
  'sortino', 'calmar', 'cagr_pct', 'expectancy', 'volatility_ann_pct'];
const LOWER_IS_BETTER = new Set(['volatility_ann_pct']);
const KEY_METRICS = [['total_return_pct', 'Return %'], ['sharpe', 'Sharpe'], ['max_drawdown_pct', 'Max DD %'], ['total_trades', 'Trades']];
const LIVE_FRAME_MS = 150;
const LIVE_SCATTER_MS = 400;

const slug = (name) => String(name || 'strategy').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'strategy';
const isInt = (v) => Number.isInteger(v);
const fmtParam = (v) => (typeof v === 'number' ? String(Math.round(v * 1e6) / 1e6) : String(v));

export class OptimizeView {
  /**
   * @param {object} hooks onOpenBacktest(id): show a backtest in the backtest view;
   *   onOpened(id): an optimization was opened (the address follows it).
   */
  constructor({ onOpenBacktest, onOpened }) {
    this.onOpenBacktest = onOpenBacktest;
    this.onOpened = onOpened;
    this.state = null;
    this.stream = null;
    this.examples = [];
    this.loaded = false;
    this.frame = 0;
    this.frameTimer = 0;
    this.lastFrame = 0;
    this.lastScatter = 0;
    this.finalized = false;
    this.plotWindow = 0;
    this.wfChart = null;
    this.heatmap = new Heatmap($('heatmap'), $('heat-tip'), $('heat-legend'));
    this.scatter = new Scatter($('pareto'), $('pareto-tip'));

    $('o-example').addEventListener('change', () => this._useExample($('o-example').value));
    $('o-from-form').addEventListener('click', () => this.fromBacktestForm());
    $('o-suggest').addEventListener('click', () => this.suggest());
    $('o-add-param').addEventListener('click', () => this._addRow({}));
    $('o-strategy').addEventListener('input', () => this._problems([]));
    $('opt-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
    $('opt-cancel').addEventListener('click', () => this.cancel());
    $('opts-refresh').addEventListener('click', () => this.refreshList());
    $('opts').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-id]');
      if (b) this.open(b.dataset.id);
    });
    for (const id of ['heat-x', 'heat-y', 'heat-metric']) $(id).addEventListener('change', () => this._configureHeatmap());
    const body = $('opt-top-body');
    body.addEventListener('click', (e) => this._rowAction(e.target.closest('tr[data-key]')));
    body.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this._rowAction(e.target.closest('tr[data-key]'));
      }
    });
    window.addEventListener('resize', () => {
      this.heatmap.dirty = true;
      this.scatter.dirty = true;
      this.schedule();
    });
    const objectives = OBJECTIVES.map(([v, label]) => el('option', { value: v, text: label }));
    $('o-objective-1').replaceChildren(...objectives);
    $('o-objective-2').replaceChildren(el('option', { value: '', text: '(none)' }), ...objectives.map((o) => o.cloneNode(true)));
  }

  // The view is shown: load the form once, redraw what waited while hidden.
  async show() {
    this.refreshList();
    this.heatmap.dirty = true;
    this.scatter.dirty = true;
    this.schedule();
    if (this.loaded) return;
    this.loaded = true;
    $('o-symbol').addEventListener('change', () => this._useDataset());
    const [examples] = await Promise.allSettled([api.examples(), this.loadDatasets()]);
    this.examples = examples.status === 'fulfilled' ? examples.value.strategies || [] : [];
    $('o-example').replaceChildren(...this.examples.map((x) => el('option', { value: x.file, text: x.name })),
      el('option', { value: '', text: '(your own JSON)' }));
    const preferred = this.examples.find((x) => x.file === 'sma_cross.json') || this.examples[0];
    if (preferred) {
      $('o-example').value = preferred.file;
      this._useExample(preferred.file);
    } else $('o-example').value = '';
    document.body.dataset.optReady = 'true';
  }

  // The symbol list (GET /datasets), again after an upload or a delete (the Datasets view; before
  // the view was first shown there is nothing to refresh): the symbol chosen stays while it exists.
  async loadDatasets(again = false) {
    if (again && !this.loaded) return;
    const chosen = $('o-symbol').value;
    let list = [];
    try {
      list = (await api.datasets()).datasets || [];
    } catch {
      if (again) return; // the list shown stays
    }
    this.datasets = new Map(list.map((d) => [d.symbol, d]));
    $('o-symbol').replaceChildren(...list.map((d) => el('option', { value: d.symbol, text: d.symbol, title: d.description })));
    if (this.datasets.has(chosen)) $('o-symbol').value = chosen;
    else this._useDataset();
  }

  _useExample(file) {
    const x = this.examples.find((e) => e.file === file);
    if (!x) return;
    $('o-strategy').value = JSON.stringify(x.strategy, null, 2);
    this.suggest();
  }

  _useDataset() {
    const d = this.datasets?.get($('o-symbol').value);
    if (!d?.last_date) return;
    for (const id of ['o-start', 'o-end']) {
      $(id).min = d.first_date || '';
      $(id).max = d.last_date || '';
    }
    const year = Number(d.last_date.slice(0, 4)) - (d.last_date.endsWith('-12-31') ? 0 : 1);
    $('o-start').value = `${year}-01-01` > d.first_date ? `${year}-01-01` : d.first_date;
    $('o-end').value = `${year}-12-31` < d.last_date ? `${year}-12-31` : d.last_date;
  }

  // The New backtest form's strategy, symbol and dates.
  fromBacktestForm() {
    $('o-strategy').value = $('f-strategy').value;
    $('o-example').value = '';
    if ($('f-symbol').value) $('o-symbol').value = $('f-symbol').value;
    if ($('f-start').value) $('o-start').value = $('f-start').value;
    if ($('f-end').value) $('o-end').value = $('f-end').value;
    this.suggest();
  }

  // One parameter per indicator period (half to twice the strategy's value), and fast < slow
  // where the indicators say so.
  suggest() {
    let s;
    try {
      s = JSON.parse($('o-strategy').value);
    } catch {
      return;
    }
    $('o-params').replaceChildren();
    const names = [];
    (s.indicators || []).forEach((ind, i) => {
      const period = Number(ind.period || 0);
      if (!(period > 0)) return;
      const low = Math.max(2, Math.round(period / 2));
      const high = Math.max(low + 1, period * 2);
      const step = Math.max(1, Math.round((high - low) / 8));
      const name = String(ind.id || `p${i}`).replace(/[^A-Za-z0-9_]/g, '_').replace(/^(\d)/, '_$1').slice(0, 64);
      names.push(name);
      this._addRow({ name, path: `indicators[${i}].period`, low, high, step });
    });
    if (!names.length) this._addRow({});
    const fast = names.find((n) => /fast/i.test(n));
    const slow = names.find((n) => /slow/i.test(n));
    $('o-constraints').value = fast && slow ? `${fast} < ${slow}` : '';
  }

  _addRow({ name = '', path = '', low = '', high = '', step = '' }) {
    const input = (cls, value, label, type = 'text') => el('input', {
      class: cls, value: String(value), type, step: type === 'number' ? 'any' : undefined, 'aria-label': label,
      spellcheck: 'false', autocomplete: 'off', dataset: { testid: `opt-param-${cls}` },
    });
    const row = el('div', { class: 'param-row', dataset: { testid: 'opt-param-row' } },
      input('name', name, 'Parameter name'), input('path', path, 'Strategy field path, e.g. indicators[0].period'),
      input('low', low, 'Low', 'number'), input('high', high, 'High', 'number'), input('step', step, 'Step (blank: continuous)', 'number'),
      el('button', { type: 'button', class: 'link', 'aria-label': 'Remove this parameter', onclick: () => row.remove() }, '×'));
    $('o-params').append(row);
  }

  _space(problems) {
    const parameters = [];
    [...$('o-params').querySelectorAll('.param-row')].forEach((row, i) => {
      const v = (cls) => row.querySelector(`.${cls}`).value.trim();
      const at = `config.space.parameters[${parameters.length}]`;
      const [low, high, step] = ['low', 'high', 'step'].map((k) => (v(k) === '' ? NaN : Number(v(k))));
      if (!v('name') && !v('path')) return; // an empty row
      if (!Number.isFinite(low) || !Number.isFinite(high)) {
        problems.push({ field: `${at}.low`, description: `row ${i + 1}: give low and high` });
        return;
      }
      const p = { name: v('name'), path: v('path') };
      const whole = isInt(low) && isInt(high) && (Number.isNaN(step) || isInt(step));
      const range = { low, high };
      if (Number.isFinite(step) && step !== 0) range.step = step;
      if (whole) p.int_range = range;
      else p.float_range = range;
      parameters.push(p);
    });
    const constraints = [];
    for (const part of $('o-constraints').value.split(/[,;]/).map((x) => x.trim()).filter(Boolean)) {
      const m = /^([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(\S+)$/.exec(part);
      if (m) constraints.push({ lhs: m[1], op: m[2], rhs: m[3] });
      else problems.push({ field: 'config.space.constraints', description: `'${part}': write NAME < NAME (or <=, >, >=, ==, !=; a number on the right)` });
    }
    return { parameters, constraints };
  }

  _request() {
    const problems = [];
    let strategy = null;
    try {
      strategy = JSON.parse($('o-strategy').value);
      if (!strategy || typeof strategy !== 'object' || Array.isArray(strategy)) throw new Error('a strategy is a JSON object');
    } catch (err) {
      problems.push({ field: 'config.strategy', description: `not JSON: ${err.message}` });
    }
    const space = this._space(problems);
    const objectives = [$('o-objective-1').value, $('o-objective-2').value].filter(Boolean).map((v) => {
      const [metric, direction] = v.split(':');
      return { metric, direction };
    });
    const config = {
      strategy, space, method: $('o-method').value, objectives,
      max_trials: Math.max(0, Math.floor(Number($('o-max-trials').value || 0))),
      top_k: Math.max(0, Math.floor(Number($('o-top-k').value || 0))),
      symbol: $('o-symbol').value, start_date: $('o-start').value, end_date: $('o-end').value,
    };
    const minTrades = $('o-min-trades').value.trim();
    if (minTrades !== '') config.filters = [{ metric: 'total_trades', min: Number(minTrades) }];
    const train = Number($('o-wf-train').value || 0);
    const test = Number($('o-wf-test').value || 0);
    if (train || test) config.walk_forward = { train_days: Math.floor(train), test_days: Math.floor(test) };
    return { problems, request: { config, strategy_id: slug(strategy?.name) } };
  }

  async start() {
    const btn = $('o-start-btn');
    const { problems, request } = this._request();
    this._problems(problems);
    if (problems.length) {
      this._say(`${problems.length} problem(s): fix them and start again`, true);
      return;
    }
    btn.disabled = true;
    this._say('Starting…');
    try {
      const res = await optApi.start(request);
      this._say(`Started ${res.optimization_id} (${fmtInt(res.total_trials)} trials)`);
      this.open(res.optimization_id);
    } catch (err) {
      if (err instanceof ApiError && err.violations.length) this._problems(err.violations);
      this._say(err.message, true);
    } finally {
      btn.disabled = false;
    }
  }

  _problems(problems) {
    const list = $('o-problems');
    list.replaceChildren(...problems.map((p) => el('li', { dataset: { testid: 'opt-problem', field: p.field } },
      el('code', { text: (p.field || '(request)').replace(/^config\./, '') }), ': ', p.description || '')));
    list.hidden = !problems.length;
    for (const node of $('opt-form').querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    const rows = [...$('o-params').querySelectorAll('.param-row')];
    for (const p of problems) {
      const m = /^config\.space\.parameters\[(\d+)\](?:\.(name|path|\w+_range\.(low|high|step)|\w+_range))?/.exec(p.field || '');
      if (m && rows[Number(m[1])]) {
        const cls = m[3] || (m[2] === 'name' || m[2] === 'path' ? m[2] : 'low');
        rows[Number(m[1])].querySelector(`.${cls}`)?.setAttribute('aria-invalid', 'true');
      } else if (/^config\.strategy/.test(p.field || '')) $('o-strategy').setAttribute('aria-invalid', 'true');
      else if (/^config\.space\.constraints/.test(p.field || '')) $('o-constraints').setAttribute('aria-invalid', 'true');
    }
  }

  _say(text, error = false) {
    $('o-status').textContent = text;
    $('o-status').classList.toggle('error', error);
  }

  // ---- an optimization ------------------------------------------------------------------

  // Open one (a new one, or an earlier one: its whole stream is replayed from event 1).
  open(id) {
    if (this.state?.id === id && this.stream && !this.stream.closed) return;
    this.stream?.dispose();
    if (this.frame) cancelAnimationFrame(this.frame);
    clearTimeout(this.frameTimer);
    this.frame = this.frameTimer = 0;
    this.finalized = false;
    const state = new OptState(id);
    this.state = state;
    this.heatmap.reset();
    this.scatter.reset();
    this.configured = false;
    this.plotWindow = 0;
    $('heat-window').textContent = '';
    $('opt-top-head').replaceChildren();
    $('opt-top-body').replaceChildren();
    $('opt-top-count').textContent = '0';
    $('wf-body').replaceChildren();
    $('wf-panel').hidden = true;
    $('wf-summary').textContent = '';
    $('pareto-panel').hidden = true;
    $('opt-overfitting').dataset.final = 'false';
    $('opt-overfitting').replaceChildren(el('p', { class: 'muted', text: 'The Deflated Sharpe Ratio and the Probability of Backtest Overfitting, once the sweep is done.' }));
    $('opt-zip').hidden = true;
    $('opt-cancel').hidden = false;
    $('opt-message').textContent = '';
    $('opt-message').classList.remove('error');
    $('opt-title').textContent = id;
    $('opt-main').dataset.status = 'QUEUED';
    $('opt-main').dataset.final = 'false';
    this._markList(id);
    this.onOpened?.(id);
    optApi.get(id).then((o) => {
      if (this.state !== state) return;
      if (!state.config) state._config(o.config);
      this._title();
    }).catch((err) => {
      if (this.state === state && err.status === 404) this._fail(`Optimization ${id} not found (expired or deleted).`);
    });
    this.stream = new OptimizationStream(id, {
      onEvents: (list) => {
        for (const [kind, , ev] of list) state.apply(kind, ev);
        this.schedule();
      },
      onState: (s, detail) => this._connection(s, detail),
      recover: (lastId) => this._recover(state, lastId),
    });
    this.stream.start(0);
    this.render();
  }

  async _recover(state, lastId) {
    let o;
    try {
      o = await optApi.get(state.id);
    } catch (err) {
      if (err.status === 404) {
        this._fail(`Optimization ${state.id} not found (expired or deleted).`);
        return 'stop';
      }
      return err.status === 401 ? 'stop' : 'retry';
    }
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(STATUS(o.status)) && lastId >= Number(o.last_event_id || 0)) {
      state.applyFinal(o);
      this.schedule();
      return 'stop';
    }
    return 'retry';
  }

  _fail(message) {
    this.stream?.close('error');
    $('opt-message').textContent = message;
    $('opt-message').classList.add('error');
  }

  _connection(s, detail = '') {
    const pill = $('opt-conn');
    pill.dataset.state = s;
    pill.textContent = detail ? `${s}: ${detail}` : s;
  }

  async cancel() {
    if (!this.state || this.state.finished) return;
    try {
      await optApi.cancel(this.state.id);
    } catch (err) {
      $('opt-message').textContent = `Cancel failed: ${err.message}`;
    }
  }

  _title() {
    const s = this.state;
    const c = s?.config;
    if (!c) return;
    $('opt-title').textContent = `${c.strategy?.name || 'strategy'} · ${c.symbol} · ${c.start_date || s.firstDate || '…'} → `
      + `${c.end_date || s.lastDate || '…'} · ${c.method}${s.walkForward ? ' · walk-forward' : ''} · ${s.id}`;
  }

  // ---- drawing --------------------------------------------------------------------------

  schedule() {
    if (this.frame || !this.state) return;
    if (this.state.finished) {
      clearTimeout(this.frameTimer);
      this.frameTimer = 0;
    }
    if (this.frameTimer) return;
    const wait = this.state.finished ? 0 : this.lastFrame + LIVE_FRAME_MS - performance.now();
    if (wait > 0) {
      this.frameTimer = setTimeout(() => {
        this.frameTimer = 0;
        this.frame = requestAnimationFrame(() => this.render());
      }, wait);
    } else this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    this.lastFrame = performance.now();
    const s = this.state;
    if (!s) return;
    const c = s.drain();
    const newWindow = c.trials.length && c.trials[c.trials.length - 1].window > this.plotWindow;
    if ((!this.configured && s.config && s.names.length) || (this.configured && newWindow)) {
      this._configurePlots();
      this._title();
    } else if (c.trials.length) {
      this.heatmap.add(c.trials);
      if (s.objectives.length > 1) this.scatter.add(c.trials);
    }
    if (c.top) {
      this.scatter.setFront(s.front);
      this._renderTop();
    }
    if (c.windows) this._renderWindows();
    const hidden = $('opt-app').hidden;
    let pending = false;
    if (!hidden) {
      this.heatmap.draw();
      const now = performance.now();
      if (s.finished || now - this.lastScatter >= LIVE_SCATTER_MS) {
        if (this.scatter.draw()) this.lastScatter = now;
      } else if (this.scatter.dirty && !$('pareto-panel').hidden) pending = true;
    }
    this._progress();
    $('opt-main').dataset.status = s.status;
    if (s.finished && !this.finalized) this._finish();
    if (pending && !this.frameTimer) {
      this.frameTimer = setTimeout(() => {
        this.frameTimer = 0;
        this.schedule();
      }, LIVE_SCATTER_MS);
    }
    const scatterPending = !$('pareto-panel').hidden && this.scatter.dirty;
    if (this.finalized && !hidden && !this.heatmap.dirty && !scatterPending) $('opt-main').dataset.final = 'true';
  }

  // The plots show one sweep: the whole optimization, or walk-forward's latest window.
  _plotTrials() {
    const s = this.state;
    const last = s.trials.length ? s.trials[s.trials.length - 1].window : 0;
    this.plotWindow = last;
    return last ? s.trials.filter((t) => t.window === last) : s.trials;
  }

  _configurePlots() {
    const s = this.state;
    const keep = this.configured ? { x: $('heat-x').value, y: $('heat-y').value, metric: $('heat-metric').value } : null;
    this.configured = true;
    const names = s.names;
    const opts = (selected) => names.map((n) => el('option', { value: n, text: n, selected: n === selected }));
    $('heat-x').replaceChildren(...opts(names[0]));
    $('heat-y').replaceChildren(el('option', { value: '', text: '(none)' }), ...opts(names[1]));
    $('heat-y').value = names[1] || '';
    const objectiveMetrics = s.objectives.map((o) => o.metric);
    $('heat-metric').replaceChildren(
      ...s.objectives.map((o, i) => el('option', { value: `objective:${i}`, text: `${o.metric} (objective)` })),
      ...HEAT_METRICS.filter((m) => !objectiveMetrics.includes(m)).map((m) => el('option', { value: m, text: m })));
    if (keep) {
      $('heat-x').value = keep.x;
      $('heat-y').value = keep.y;
      $('heat-metric').value = keep.metric;
    }
    this._configureHeatmap();
    const two = s.objectives.length > 1;
    $('pareto-panel').hidden = !two;
    if (two) {
      const label = (o) => `${o.metric} (${o.direction === 'minimize' ? 'min' : 'max'})`;
      this.scatter.reset();
      this.scatter.configure([label(s.objectives[0]), label(s.objectives[1])], names);
      this.scatter.add(this._plotTrials());
      this.scatter.setFront(s.front);
      $('pareto-hint').textContent = `${label(s.objectives[0])} × ${label(s.objectives[1])}`;
    }
    $('wf-panel').hidden = !s.walkForward;
    this._renderTop();
  }

  _configureHeatmap() {
    const s = this.state;
    if (!s) return;
    const params = s.parameters;
    const find = (name) => params.find((p) => p.name === name) || null;
    const metric = $('heat-metric').value || 'objective:0';
    let sign = 1;
    let label = metric;
    if (metric.startsWith('objective:')) {
      const o = s.objectives[Number(metric.slice(10))];
      sign = o?.direction === 'minimize' ? -1 : 1;
      label = o?.metric || metric;
    } else if (LOWER_IS_BETTER.has(metric)) sign = -1;
    this.heatmap.configure({ x: find($('heat-x').value), y: find($('heat-y').value), metric, sign, label, names: s.names },
      this._plotTrials());
    $('heat-h').dataset.window = String(this.plotWindow || '');
    $('heat-window').textContent = this.plotWindow ? `window ${this.plotWindow}` : '';
    this.schedule();
  }

  _progress() {
    const s = this.state;
    const total = s.total || 0;
    const done = s.completed || 0;
    const pct = total ? Math.min(100, (done / total) * 100) : 0;
    $('opt-progress-fill').style.transform = `scaleX(${pct / 100})`;
    $('opt-progress').setAttribute('aria-valuenow', pct.toFixed(0));
    const windows = s.totalWindows ? ` · window ${Math.min(s.completedWindows + (s.finished ? 0 : 1), s.totalWindows)}/${s.totalWindows}` : '';
    $('opt-progress-text').textContent = total ? `${fmtInt(done)} / ${fmtInt(total)} trials · ${pct.toFixed(0)} %${windows}` : STATUS(s.status).toLowerCase();
    let eta = '';
    if (s.finished) eta = s.status.toLowerCase();
    else if (s.eta && s.eta > Date.now()) eta = `ETA ${fmtDuration((s.eta - Date.now()) / 1000)}`;
    else if (done) eta = 'estimating…';
    $('opt-eta').textContent = eta;
    const best = s.top[0];
    const o = s.objectives[0];
    $('opt-best').textContent = best && o
      ? `best ${o.metric} ${fmtNum(best.objectives[0])}: ${s.names.map((n) => `${n} ${fmtParam(best.values[n])}`).join(' · ')} (trial #${best.number}${best.window ? `, window ${best.window}` : ''})`
      : '';
  }

  _renderTop() {
    const s = this.state;
    const objectiveMetrics = s.objectives.map((o) => o.metric);
    const extra = KEY_METRICS.filter(([m]) => !objectiveMetrics.includes(m));
    const head = el('tr', {}, el('th', { scope: 'col', text: '#' }), el('th', { scope: 'col', text: 'Trial' }),
      s.walkForward ? el('th', { scope: 'col', text: 'Window' }) : null,
      ...s.names.map((n) => el('th', { scope: 'col', class: 'num', text: n })),
      ...s.objectives.map((o) => el('th', { scope: 'col', class: 'num', text: `${o.metric} ${o.direction === 'minimize' ? '↓' : '↑'}` })),
      ...extra.map(([, label]) => el('th', { scope: 'col', class: 'num', text: label })));
    $('opt-top-head').replaceChildren(head);
    const rows = s.top.map((t, i) => {
      const onFront = s.front.has(`${t.window}:${t.number}`);
      return el('tr', { tabindex: '0', role: 'button', title: 'Run this trial as a backtest',
        'aria-label': `Open trial ${t.number} as a backtest`,
        dataset: { testid: 'opt-top-row', key: String(i), number: String(t.number), window: String(t.window) } },
      el('td', { text: `${i + 1}${onFront ? ' ★' : ''}`, title: onFront ? 'On the Pareto front' : undefined }),
      el('td', { class: 'num', text: String(t.number) }),
      s.walkForward ? el('td', { class: 'num', text: String(t.window) }) : null,
      ...s.names.map((n) => el('td', { class: 'num', text: fmtParam(t.values[n]) })),
      ...t.objectives.map((v) => el('td', { class: `num ${signClass(v)}`, text: fmtNum(v) })),
      ...extra.map(([m]) => {
        const v = t.metrics?.[m];
        return el('td', { class: `num ${m === 'total_trades' ? '' : signClass(v)}`, text: m === 'total_trades' ? fmtInt(v ?? 0) : fmtNum(v) });
      }));
    });
    this.topRows = s.top.slice();
    $('opt-top-body').replaceChildren(...rows);
    $('opt-top-count').textContent = String(rows.length);
  }

  async _rowAction(row) {
    if (!row || !this.state) return;
    const t = this.topRows?.[Number(row.dataset.key)];
    if (!t) return;
    row.setAttribute('aria-busy', 'true');
    $('opt-message').classList.remove('error');
    $('opt-message').textContent = `Starting a backtest of trial #${t.number}…`;
    try {
      const res = await optApi.startBacktest(this.state.backtestRequest(t));
      $('opt-message').textContent = `Trial #${t.number} runs as backtest ${res.backtest_id}`;
      this.onOpenBacktest(res.backtest_id);
    } catch (err) {
      const detail = err instanceof ApiError && err.violations.length
        ? `: ${err.violations.map((v) => `${v.field}: ${v.description}`).join('; ')}` : '';
      $('opt-message').textContent = `Could not start the backtest: ${err.message}${detail}`;
      $('opt-message').classList.add('error');
    } finally {
      row.removeAttribute('aria-busy');
    }
  }

  _renderWindows() {
    const s = this.state;
    $('wf-panel').hidden = !s.walkForward;
    $('wf-body').replaceChildren(...s.windows.map((w) => {
      const values = w.parameters || {};
      const winner = s.names.filter((n) => values[n] !== undefined).map((n) => `${n} ${fmtParam(values[n])}`).join(' · ') || '(none feasible)';
      const ret = (m) => el('td', { class: `num ${signClass(m?.total_return_pct)}`, text: fmtNum(m?.total_return_pct) });
      return el('tr', { dataset: { testid: 'opt-wf-row' } }, el('td', { text: String(w.index) }),
        el('td', { text: `${w.train_start} → ${w.train_end}` }), el('td', { text: `${w.test_start} → ${w.test_end}` }),
        el('td', { text: winner }), ret(w.in_sample), ret(w.out_of_sample),
        el('td', { class: `num ${signClass(w.out_of_sample?.sharpe)}`, text: fmtNum(w.out_of_sample?.sharpe) }),
        el('td', { class: 'num', text: fmtNum(w.overfitting?.deflated_sharpe) }));
    }));
  }

  _renderOverfitting() {
    const s = this.state;
    const box = $('opt-overfitting');
    const wf = s.result?.walk_forward;
    const lastWindow = wf?.windows?.length ? wf.windows[wf.windows.length - 1] : null;
    const rep = s.walkForward ? lastWindow?.overfitting : s.result?.overfitting;
    if (!rep) {
      box.replaceChildren(el('p', { class: 'muted', text: s.status === 'COMPLETED' ? 'No overfitting report.' : 'Stopped before the end: no overfitting statistics.' }));
      box.dataset.final = 'true';
      return;
    }
    const dsr = Number(rep.deflated_sharpe);
    const pbo = Number(rep.pbo);
    const verdict = (ok) => (ok === null ? '' : ok ? 'up' : 'down');
    box.replaceChildren(
      s.walkForward ? el('p', { class: 'muted', text: `The latest window (${lastWindow.index}); each window's DSR is in the walk-forward table.` }) : '',
      el('dl', { class: 'overfit' },
        el('dt', { text: 'Deflated Sharpe Ratio' }),
        el('dd', { class: verdict(Number.isFinite(dsr) ? dsr >= 0.95 : null), dataset: { testid: 'opt-dsr' }, text: fmtNum(dsr) }),
        el('dt', { text: 'Prob. of backtest overfitting' }),
        el('dd', { class: verdict(Number.isFinite(pbo) ? pbo <= 0.5 : null), dataset: { testid: 'opt-pbo' }, text: fmtNum(pbo) }),
        el('dt', { text: 'Winner\'s Sharpe (daily)' }), el('dd', { text: fmtNum(rep.winner_sharpe) }),
        el('dt', { text: 'Luck alone would give' }), el('dd', { text: fmtNum(rep.expected_max_sharpe) }),
        el('dt', { text: 'Distinct trials' }), el('dd', { text: fmtInt(rep.trials) }),
        el('dt', { text: 'CSCV' }), el('dd', { text: Number(rep.cscv_splits) ? `${rep.cscv_splits} splits, ${fmtInt(rep.cscv_combinations)} combinations` : '—' })),
      el('p', { class: 'reading', dataset: { testid: 'opt-reading' }, text: rep.reading || '' }));
    box.dataset.final = 'true';
  }

  _renderWalkForward() {
    const s = this.state;
    const wf = s.result?.walk_forward;
    if (!s.walkForward || !wf) return;
    const m = wf.out_of_sample || {};
    const eff = Number(wf.efficiency);
    $('wf-summary').textContent = `out of sample: return ${fmtNum(m.total_return_pct)} %, sharpe ${fmtNum(m.sharpe)}, `
      + `max DD ${fmtNum(m.max_drawdown_pct)} % · efficiency ${Number.isFinite(eff) ? fmtNum(eff) : '— (in-sample return not positive)'}`;
    const node = $('wf-chart');
    if (!chartsAvailable) {
      node.replaceChildren(el('div', { class: 'no-chart', text: MISSING_MESSAGE }));
      return;
    }
    const points = [];
    (wf.dates || []).forEach((d, i) => {
      const value = Number(wf.equity[i]);
      if (Number.isFinite(value) && (!points.length || d > points[points.length - 1].time)) points.push({ time: d, value });
    });
    const LWC = globalThis.LightweightCharts;
    if (!this.wfChart) {
      const css = getComputedStyle(document.documentElement);
      const color = (name) => css.getPropertyValue(name).trim();
      node.replaceChildren();
      const chart = LWC.createChart(node, {
        autoSize: true,
        layout: { background: { type: 'solid', color: color('--panel') }, textColor: color('--muted'), fontSize: 11 },
        grid: { vertLines: { color: '#1a2230' }, horzLines: { color: '#1a2230' } },
        rightPriceScale: { borderColor: color('--line') },
        timeScale: { borderColor: color('--line') },
      });
      const series = chart.addSeries(LWC.LineSeries, { color: color('--accent'), lineWidth: 2, priceLineVisible: false,
        priceFormat: { type: 'price', precision: 0, minMove: 1 } });
      this.wfChart = { chart, series };
    }
    this.wfChart.series.setData(points);
    this.wfChart.chart.timeScale().fitContent();
    node.dataset.points = String(points.length);
  }

  _finish() {
    const s = this.state;
    this.finalized = true;
    $('opt-cancel').hidden = true;
    $('opt-zip').href = optApi.zipUrl(s.id);
    $('opt-zip').setAttribute('download', `${s.id}.zip`);
    $('opt-zip').hidden = s.status === 'FAILED';
    if (s.message) {
      $('opt-message').textContent = s.message;
      $('opt-message').classList.toggle('error', s.status === 'FAILED');
    }
    if (!this.configured && s.config) this._configurePlots();
    this._renderTop();
    this._renderWindows();
    this._renderOverfitting();
    if (this.wfChart && !s.walkForward) this.wfChart.series.setData([]);
    this._renderWalkForward();
    this.refreshList();
    this.schedule(); // the final frame (data-final) once the canvases are drawn
  }

  // ---- earlier optimizations ------------------------------------------------------------

  async refreshList() {
    const root = $('opts');
    try {
      const res = await optApi.list();
      const items = res.optimizations || [];
      root.replaceChildren(...(items.length ? items.map((o) => this._item(o)) : [el('li', { class: 'muted', text: 'No optimizations yet.' })]));
    } catch (err) {
      root.replaceChildren(el('li', { class: 'down', text: `Could not list optimizations: ${err.message}` }));
    }
    this._markList(this.state?.id);
  }

  _markList(id) {
    for (const b of $('opts').querySelectorAll('button[data-id]')) b.setAttribute('aria-current', String(b.dataset.id === id));
  }

  _item(o) {
    const status = STATUS(o.status);
    const c = o.config || {};
    const p = o.progress || {};
    const when = o.created_at ? new Date(o.created_at).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'short' }) : '';
    return el('li', {}, el('button', { type: 'button', dataset: { id: o.optimization_id, testid: 'opt-item', status },
      'aria-label': `Open the optimization of ${c.strategy?.name || o.strategy_id} on ${c.symbol}, ${status.toLowerCase()}` },
    el('span', { class: `dot ${status}`, title: status }),
    el('span', { text: `${c.strategy?.name || o.strategy_id || o.optimization_id} · ${c.method || ''}` }),
    el('span', { class: 'num', text: `${fmtInt(p.completed_trials || 0)}/${fmtInt(p.total_trials || 0)}` }),
    el('span', { class: 'meta', text: `${c.symbol || ''} · ${c.start_date || '…'} → ${c.end_date || '…'} · ${status.toLowerCase()} · ${when}` })));
  }

  // Signed out: nothing keeps reading.
  stop() {
    this.stream?.dispose();
  }
}
