// A run's analytics (GET /backtests/{id}/analytics, hindsight.v1.Analytics) fetched and parsed
// off the page's main thread: a decade's run has ~50,000 trades, ~12 MB of JSON that would take
// JSON.parse a long task. A Web Worker (analytics-worker.js) fetches and parses it and turns the
// trades into columns (typed arrays for numbers, codes for the few distinct sides, exit reasons
// and nodes), handed over without copying; the rest of the answer is small and comes as it is.
// Without the worker the page does the same itself.
//
// Also imported by the worker: nothing here may touch the DOM at import.

import { ApiError, request } from './api.js';

const NUMBERS = ['duration_minutes', 'pnl', 'return_pct'];
const INTEGERS = ['entry_hour', 'entry_minute_of_day'];
const STRINGS = ['trade_id', 'entry_time', 'exit_time'];
const CATEGORIES = ['side', 'exit_reason', 'node_id'];
// The trade scatter's CSV: every TradePoint field, in the proto's order.
export const TRADE_FIELDS = ['trade_id', 'entry_time', 'exit_time', 'duration_minutes', 'pnl', 'return_pct', 'entry_hour',
  'entry_minute_of_day', 'side', 'exit_reason', 'node_id'];

// proto3 JSON: doubles may be "NaN" / "Infinity" / "-Infinity", int64 strings; absent is zero.
const number = (v) => (v === undefined || v === null ? 0 : Number(v));

/**
 * TradePoint JSON objects → {n, trade_id: [], entry_time: [], exit_time: [], duration_minutes:
 * Float64Array, pnl, return_pct, entry_hour: Int32Array, entry_minute_of_day, categories: {side,
 * exit_reason, node_id: {values: [string], codes: Uint16Array}}}.
 */
export function tradeColumns(trades = []) {
  const n = trades.length;
  const cols = { n, categories: {} };
  for (const k of NUMBERS) cols[k] = new Float64Array(n);
  for (const k of INTEGERS) cols[k] = new Int32Array(n);
  for (const k of STRINGS) cols[k] = new Array(n);
  const lookup = {};
  for (const k of CATEGORIES) {
    cols.categories[k] = { values: [], codes: new Uint16Array(n) };
    lookup[k] = new Map();
  }
  for (let i = 0; i < n; i++) {
    const t = trades[i];
    for (const k of NUMBERS) cols[k][i] = number(t[k]);
    for (const k of INTEGERS) cols[k][i] = number(t[k]);
    for (const k of STRINGS) cols[k][i] = t[k] ?? '';
    for (const k of CATEGORIES) {
      const v = t[k] ?? '';
      let code = lookup[k].get(v);
      if (code === undefined) {
        code = cols.categories[k].values.length;
        cols.categories[k].values.push(v);
        lookup[k].set(v, code);
      }
      cols.categories[k].codes[i] = code;
    }
  }
  return cols;
}

// Trade i of the columns as a TradePoint-shaped object.
export function tradeAt(cols, i) {
  const t = {};
  for (const k of TRADE_FIELDS) {
    const cat = cols.categories[k];
    t[k] = cat ? cat.values[cat.codes[i]] : cols[k][i];
  }
  return t;
}

// The buffers of the columns (to hand over without a copy).
export function transferables(cols) {
  return [...NUMBERS, ...INTEGERS].map((k) => cols[k].buffer).concat(CATEGORIES.map((k) => cols.categories[k].codes.buffer));
}

// An Analytics answer with its trades as columns.
export function splitAnalytics(json) {
  const data = json || {};
  const trades = tradeColumns(data.trades || []);
  data.trades = trades;
  return data;
}

export function analyticsPath(id, { window, bins } = {}) {
  const q = new URLSearchParams();
  if (window) q.set('rolling_window_days', String(window));
  if (bins) q.set('histogram_bins', String(bins));
  const qs = q.toString();
  return `api/v1/backtests/${encodeURIComponent(id)}/analytics${qs ? `?${qs}` : ''}`;
}

// ---- the page's side ------------------------------------------------------------------------

let worker = null;
let broken = false;
let seq = 0;
let last = ''; // how the last answer came: 'worker' or 'page'

// How the last analytics were fetched and parsed: 'worker' or 'page' (for the browser tests).
export const transport = () => last;
const waiting = new Map(); // request id → {resolve, reject, path}

function startWorker() {
  if (worker || broken || typeof Worker === 'undefined') return worker;
  try {
    worker = new Worker(new URL('./analytics-worker.js', import.meta.url), { type: 'module', name: 'analytics' });
  } catch {
    broken = true;
    return null;
  }
  worker.onmessage = (e) => {
    const m = e.data;
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.ok) {
      last = 'worker';
      w.resolve(m.data);
    }
    // 401 goes through api.js's request, which hands it to the session (the sign-in form).
    else if (m.status === 401 || !m.status) w.resolve(onPage(w.path));
    else w.reject(new ApiError(m.status, m.body));
  };
  worker.onerror = (e) => {
    // The worker did not load (or died): the page fetches what was waiting, and the rest.
    e.preventDefault?.();
    broken = true;
    worker?.terminate();
    worker = null;
    for (const [id, w] of waiting) {
      waiting.delete(id);
      w.resolve(onPage(w.path));
    }
  };
  return worker;
}

async function onPage(path) {
  const data = splitAnalytics(await request('GET', path));
  last = 'page';
  return data;
}

/** A run's analytics, its trades as columns; ApiError on a failure. */
export function fetchAnalytics(id, params) {
  const path = analyticsPath(id, params);
  const w = startWorker();
  if (!w) return onPage(path);
  return new Promise((resolve, reject) => {
    const rid = ++seq;
    waiting.set(rid, { resolve, reject, path });
    w.postMessage({ id: rid, url: new URL(path, document.baseURI).toString() });
  });
}
