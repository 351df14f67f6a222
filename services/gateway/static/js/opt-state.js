// One optimization as the page knows it, built from its events (no DOM here). The views read
// this state and the changes collected since their last frame (`drain()`).
//
// JSON is the gateway's: proto field names, int64 as strings, NaN as "NaN"; Struct numbers
// (a trial's parameters) as numbers.

export const STATUS = (s) => String(s || '').replace('OPTIMIZATION_STATUS_', '');

const num = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v));

// A trial as the views use it.
export function trialOf(t) {
  return {
    number: num(t.number),
    window: num(t.window || 0),
    values: t.parameters || {},
    objectives: (t.objective_values || []).map(num),
    feasible: !!t.feasible,
    metrics: t.metrics || {},
  };
}

// The Strategy field a path names ("indicators[0].period", "entries[1].when.all[0].rhs.value")
// set to `value` in a strategy in proto3 JSON (objects made on the way where missing).
export function setPath(strategy, path, value) {
  const steps = [];
  for (const part of String(path).split('.')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$/.exec(part);
    if (!m) throw new Error(`'${path}' is not a field path`);
    steps.push([m[1], m[2] === undefined ? null : Number(m[2])]);
  }
  let node = strategy;
  steps.forEach(([name, index], k) => {
    const last = k === steps.length - 1;
    const camel = name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    const key = !(name in node) && camel in node ? camel : name; // a hand-written strategy may use lowerCamelCase
    if (index === null) {
      if (last) node[key] = value;
      else {
        if (!node[key] || typeof node[key] !== 'object') node[key] = {};
        node = node[key];
      }
      return;
    }
    if (!Array.isArray(node[key])) node[key] = [];
    if (last) node[key][index] = value;
    else {
      if (!node[key][index] || typeof node[key][index] !== 'object') node[key][index] = {};
      node = node[key][index];
    }
  });
  return strategy;
}

// The complete strategy of a trial: `base` (the sweep's, with its overrides and warm-up) with
// the trial's values written at their parameters' paths.
export function applyParameters(base, parameters, values) {
  const s = structuredClone(base);
  for (const p of parameters) if (values[p.name] !== undefined) setPath(s, p.path, values[p.name]);
  return s;
}

export class OptState {
  constructor(id) {
    this.id = id;
    this.config = null;          // OptimizationConfig
    this.status = 'QUEUED';      // QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED
    this.names = [];             // parameter names, in the space's order
    this.objectives = [];        // [{metric, direction}]
    this.total = 0;              // trials planned
    this.completed = 0;
    this.totalWindows = 0;
    this.completedWindows = 0;
    this.firstDate = '';
    this.lastDate = '';
    this.eta = null;             // epoch ms of the engine's estimate
    this.trials = [];            // every trial, in event order
    this.top = [];               // the best K distinct feasible trials (of the latest window), best first
    this.topKeys = new Set();
    this.topWindow = -1;
    this.front = new Set();      // "window:number" of the trials on the Pareto front (several objectives)
    this.windows = [];           // WalkForwardWindow, as they complete
    this.result = null;          // OptimizationResult, at the end
    this.message = '';
    this.firstEventAt = 0;
    this._fresh();
  }

  _fresh() {
    this.changes = { trials: [], top: false, windows: false, result: false, any: false, reset: false };
  }

  drain() {
    const c = this.changes;
    this._fresh();
    return c;
  }

  get k() {
    return Math.max(1, Math.min(100, Number(this.config?.top_k || 0) || 10));
  }

  get parameters() {
    return this.config?.space?.parameters || [];
  }

  get walkForward() {
    return this.totalWindows > 0 || !!this.config?.walk_forward;
  }

  get finished() {
    return this.status === 'COMPLETED' || this.status === 'FAILED' || this.status === 'CANCELLED';
  }

  sign(index = 0) {
    return this.objectives[index]?.direction === 'minimize' ? -1 : 1;
  }

  _config(config) {
    if (!config) return;
    this.config = config;
    if (!this.names.length) this.names = (config.space?.parameters || []).map((p) => p.name);
    if (!this.objectives.length) {
      const objs = (config.objectives || []).map((o) => ({ metric: o.metric, direction: o.direction || 'maximize' }));
      this.objectives = objs.length ? objs : [{ metric: 'sharpe', direction: 'maximize' }];
    }
  }

  _progress(p) {
    if (!p) return;
    this.completed = Math.max(this.completed, num(p.completed_trials) || 0);
    this.total = num(p.total_trials) || this.total;
    this.completedWindows = Math.max(this.completedWindows, num(p.completed_windows) || 0);
    this.totalWindows = num(p.total_windows) || this.totalWindows;
    this.eta = p.estimated_completion ? Date.parse(p.estimated_completion) : null;
  }

  // `ev`: {[kind]: body}; `kind`: its set oneof field.
  apply(kind, ev) {
    if (!this.firstEventAt) this.firstEventAt = performance.now();
    this.changes.any = true;
    const body = ev[kind] || {};
    switch (kind) {
      case 'optimization_started':
        this.status = 'RUNNING';
        this._config(body.config);
        if (body.parameters?.length) this.names = body.parameters;
        if (body.objectives?.length) {
          this.objectives = body.objectives.map((o) => {
            const [metric, direction] = String(o).split(':');
            return { metric, direction: direction || 'maximize' };
          });
        }
        this.total = num(body.total_trials) || this.total;
        this.totalWindows = num(body.total_windows) || 0;
        this.firstDate = body.first_date || '';
        this.lastDate = body.last_date || '';
        this.base = body.base_strategy || null;
        this.changes.reset = true;
        break;
      case 'trial_completed': {
        this.status = 'RUNNING';
        const t = trialOf(body.trial || {});
        this.trials.push(t);
        this.changes.trials.push(t);
        this._offer(t);
        this._progress(body.progress);
        break;
      }
      case 'best_updated':
        if (this.objectives.length > 1) {
          this.front = new Set((body.best || []).map((t) => `${num(t.window || 0)}:${num(t.number)}`));
          this.changes.top = true;
        }
        break;
      case 'window_completed':
        if (body.window) this.windows.push(body.window);
        this._progress(body.progress);
        this.changes.windows = true;
        break;
      case 'optimization_completed':
        this.status = 'COMPLETED';
        this._progress(body.progress);
        this._result(body.result);
        break;
      case 'optimization_failed':
        this.status = 'FAILED';
        this.message = `Failed: ${body.error_code || ''} ${body.error_message || ''}`.trim();
        break;
      case 'optimization_cancelled':
        this.status = 'CANCELLED';
        this._progress(body.progress);
        this.message = `Cancelled${body.reason ? `: ${body.reason}` : ''}: the best of the trials run so far.`;
        break;
      default:
        break;
    }
  }

  // From GET /optimizations/{id}, when the stream cannot tell (it ended while we were away).
  applyFinal(o) {
    this._config(o.config);
    this.status = STATUS(o.status);
    this._progress(o.progress);
    if (o.result) this._result(o.result);
    if (o.error_message) this.message = `${this.status === 'FAILED' ? 'Failed' : 'Cancelled'}: ${o.error_message}`;
    this.changes.any = true;
  }

  _result(result) {
    if (!result) return;
    this.result = result;
    if (result.top?.length) {
      this.top = result.top.map(trialOf);
      this.topKeys = new Set(this.top.map((t) => this._key(t)));
    }
    if (result.pareto_front?.length) this.front = new Set(result.pareto_front.map((t) => `${num(t.window || 0)}:${num(t.number)}`));
    if (result.walk_forward?.windows?.length) this.windows = result.walk_forward.windows;
    this.changes.result = this.changes.top = this.changes.windows = true;
  }

  _key(t) {
    return `${t.window}|${this.names.map((n) => t.values[n]).join('|')}`;
  }

  // Keep the top K up to date one trial at a time (each parameter set once; a new walk-forward
  // window starts a new list).
  _offer(t) {
    if (t.window !== this.topWindow) {
      if (t.window < this.topWindow) return;
      this.topWindow = t.window;
      this.top = [];
      this.topKeys.clear();
      this.changes.top = true;
    }
    const v = t.objectives[0];
    if (!t.feasible || !Number.isFinite(v)) return;
    const key = this._key(t);
    if (this.topKeys.has(key)) return;
    const s = this.sign(0);
    const k = this.k;
    const better = (a, b) => s * a.objectives[0] > s * b.objectives[0]
      || (s * a.objectives[0] === s * b.objectives[0] && a.number < b.number);
    if (this.top.length >= k && !better(t, this.top[this.top.length - 1])) return;
    let i = this.top.length;
    while (i > 0 && better(t, this.top[i - 1])) i--;
    this.top.splice(i, 0, t);
    this.topKeys.add(key);
    if (this.top.length > k) this.topKeys.delete(this._key(this.top.pop()));
    this.changes.top = true;
  }

  // The strategy every trial is a variant of: the engine's (optimization_started.base_strategy:
  // the sweep's overrides and warm-up, so a trial opened as a backtest gives the trial's
  // numbers, also mid-sweep), else the result's winner, else the config's with its overrides.
  baseStrategy() {
    if (this.base && (this.base.indicators?.length || this.base.entries?.length)) return this.base;
    const best = this.result?.best_strategy;
    if (best && (best.indicators?.length || best.entries?.length)) return best;
    const s = structuredClone(this.config?.strategy || {});
    const c = this.config || {};
    s.execution = s.execution || {};
    if (Number(c.initial_capital)) s.execution.initial_capital = Number(c.initial_capital);
    if (Number(c.commission_pct)) s.execution.commission_pct = Number(c.commission_pct);
    if (Number(c.slippage_pct)) s.execution.slippage_pct = Number(c.slippage_pct);
    if (c.timeframe) s.execution.timeframe = c.timeframe;
    return s;
  }

  // StartBacktestRequest for a trial: its complete strategy, same symbol and dates (a
  // walk-forward trial: its window's training dates).
  backtestRequest(t) {
    const c = this.config || {};
    let start = c.start_date || this.firstDate;
    let end = c.end_date || this.lastDate;
    const w = t.window ? this.windows.find((x) => Number(x.index) === t.window) : null;
    if (w?.train_start) {
      start = w.train_start;
      end = w.train_end;
    }
    return {
      strategy: applyParameters(this.baseStrategy(), this.parameters, t.values),
      strategy_id: `${this.id}-trial-${t.window ? `${t.window}-` : ''}${t.number}`.slice(0, 200),
      symbol: c.symbol,
      start_date: start,
      end_date: end,
      timeframe: c.timeframe || '',
      request_id: `${this.id}:${t.window}:${t.number}`.slice(0, 128),
    };
  }
}
