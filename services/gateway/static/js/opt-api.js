// The optimization REST API and its event stream (OptimizationService through the gateway).
//
// Requests go through js/api.js's request (same-origin, the session cookie, JSON; a 401 goes
// to the page's sign-in through the handler main.js registers with onUnauthorized). The stream is js/stream.js's Feed (EventSource, Last-Event-ID
// resume, ?after_event_id= reopen, duplicate ids dropped) reading the batched stream
// `…/stream:batches`, with the optimization's event kinds. As for backtests, it runs in a Web
// Worker (js/stream-worker.js, kind 'optimization'), on the page where none starts: 10,000 trials are ~15 MB of
// JSON, and the worker hands the page each trial with the few metrics the page shows.

import { apiUrl, request } from './api.js';
import { Feed } from './stream.js';

export const OPT_KINDS = ['optimization_started', 'trial_completed', 'best_updated', 'window_completed',
  'optimization_completed', 'optimization_failed', 'optimization_cancelled'];
export const OPT_TERMINAL = new Set(['optimization_completed', 'optimization_failed', 'optimization_cancelled']);

const enc = encodeURIComponent;

export const optApi = {
  start: (req) => request('POST', 'api/v1/optimizations', req),
  list: () => request('GET', 'api/v1/optimizations?page_size=50'),
  get: (id) => request('GET', `api/v1/optimizations/${enc(id)}`),
  cancel: (id) => request('POST', `api/v1/optimizations/${enc(id)}:cancel`, {}),
  startBacktest: (req) => request('POST', 'api/v1/backtests', req),
  // Batches of at most 250 events (~400 KB): each parsed well within a frame.
  streamUrl: (id) => apiUrl(`api/v1/optimizations/${enc(id)}/stream:batches?max_events=250`),
  zipUrl: (id) => apiUrl(`api/v1/optimizations/${enc(id)}/archive.zip`),
};

function kindOf(ev) {
  for (const k of OPT_KINDS) if (ev[k] !== undefined) return k;
  return undefined;
}

// The metrics of a trial the page shows (heatmap colours, tooltips, the top table); the rest
// stay in the stream (GetOptimization and the ZIP have them).
export const TRIAL_METRICS = ['total_return_pct', 'sharpe', 'max_drawdown_pct', 'total_trades', 'win_rate_pct',
  'profit_factor', 'sortino', 'calmar', 'cagr_pct', 'expectancy', 'volatility_ann_pct'];

function slimTrial(t) {
  const metrics = {};
  for (const m of TRIAL_METRICS) if (t.metrics?.[m] !== undefined) metrics[m] = t.metrics[m];
  return { number: t.number, window: t.window, parameters: t.parameters, objective_values: t.objective_values,
    feasible: t.feasible, metrics };
}

// The Feed with an optimization's kinds: hands over [[kind, id, {[kind]: body}], …] per SSE
// message, each trial_completed's trial slimmed to what the page shows.
export class OptimizationFeed extends Feed {
  _onMessage(e) {
    if (this.closed || e.target !== this.es) return;
    const list = [];
    let terminal = false;
    for (const ev of JSON.parse(e.data).events || []) {
      const id = Number(ev.event_id);
      if (!(id > this.lastId)) {
        this.stats.duplicates++;
        continue;
      }
      this.lastId = id;
      this.stats.events++;
      const kind = kindOf(ev);
      if (!kind) continue;
      let body = ev[kind];
      if (kind === 'trial_completed' && body?.trial) body = { trial: slimTrial(body.trial), progress: body.progress };
      list.push([kind, id, { [kind]: body }]);
      if (OPT_TERMINAL.has(kind)) {
        terminal = true;
        break;
      }
    }
    this.out.events(list, this.lastId, this.stats);
    if (terminal) this.close('done');
  }
}

/**
 * One optimization's stream, from event `afterId` (0: replay from the start).
 * @param {object} handlers onEvents(list) with [[kind, id, event], …]; onState(state, detail);
 *   recover(lastId) → Promise<'retry'|'stop'> when the browser gave up on the stream.
 */
export class OptimizationStream {
  constructor(id, { onEvents, onState, recover }) {
    this.url = optApi.streamUrl(id);
    this.closed = false;
    this.lastId = 0;
    this.started = null;
    this.stats = { events: 0, duplicates: 0, drops: 0, reopens: 0 };
    this.feed = null;
    this.worker = null;
    this.out = {
      events: (list, lastId, stats) => {
        if (this.closed) return;
        Object.assign(this.stats, stats);
        this.lastId = lastId;
        if (list.length) onEvents(list);
      },
      state: (state, detail, stats) => {
        if (this.closed) return;
        Object.assign(this.stats, stats);
        if (state === 'done' || state === 'closed' || state === 'error') this.closed = true;
        onState(state, detail);
      },
      recover: (lastId) => recover(lastId),
    };
    try {
      this.worker = new Worker(new URL('./stream-worker.js', import.meta.url), { type: 'module', name: 'optimization-stream' });
      this.worker.onmessage = (e) => this._fromWorker(e.data);
      this.worker.onerror = (e) => {
        e.preventDefault?.();
        this._onPage();
      };
    } catch {
      this._onPage();
    }
  }

  start(afterId = 0) {
    this.lastId = afterId;
    this.started = afterId;
    if (this.feed) this.feed.start(afterId);
    else this.worker?.postMessage({ type: 'start', url: this.url, afterId, kind: 'optimization' });
  }

  close(state = 'closed') {
    if (this.closed) return;
    this.out.state(state, '', this.stats);
    this.closed = true;
    this.feed?.stop();
    this.worker?.postMessage({ type: 'close' });
  }

  dispose() {
    this.closed = true;
    this.feed?.stop();
    this.worker?.terminate();
    this.worker = null;
  }

  // The worker did not start (or failed): read the stream here, from the last event the page has.
  _onPage() {
    if (this.feed || this.closed) return;
    this.worker?.terminate();
    this.worker = null;
    this.feed = new OptimizationFeed(this.url, this.out);
    this.feed.stats = { ...this.stats };
    if (this.started !== null) this.feed.start(this.lastId);
  }

  async _fromWorker(m) {
    if (m.type === 'events') this.out.events(m.list, m.lastId, m.stats);
    else if (m.type === 'state') this.out.state(m.state, m.detail, m.stats);
    else if (m.type === 'recover') {
      let verdict = 'retry';
      try { verdict = await this.out.recover(m.lastId); } catch { verdict = 'retry'; }
      this.worker?.postMessage({ type: 'verdict', id: m.id, verdict });
    }
  }
}
