// The optimization REST API and its event stream (OptimizationService through the gateway).
//
// Requests go out as js/api.js sends them (same-origin, the session cookie, JSON; a 401 goes to
// the page's sign-in through the handler main.js registers with api.js's onUnauthorized, which
// js/optimize.js is handed). The stream is js/stream.js's Feed (EventSource, Last-Event-ID
// resume, ?after_event_id= reopen, duplicate ids dropped) reading the batched stream
// `…/stream:batches`, with the optimization's event kinds; it runs on the page: an optimization's
// events are a few kilobytes each, 10,000 trials ~15 MB, parsed a batch (≤ 1,000 events) at a time.

import { ApiError, apiUrl } from './api.js';
import { Feed } from './stream.js';

export const OPT_KINDS = ['optimization_started', 'trial_completed', 'best_updated', 'window_completed',
  'optimization_completed', 'optimization_failed', 'optimization_cancelled'];
export const OPT_TERMINAL = new Set(['optimization_completed', 'optimization_failed', 'optimization_cancelled']);

let unauthorized = null;

// Called with the ApiError of a 401 (the page shows its sign-in form).
export function onOptUnauthorized(handler) {
  unauthorized = handler;
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(apiUrl(path), init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text.slice(0, 200) }; }
  if (!res.ok) {
    const err = new ApiError(res.status, json);
    if (res.status === 401 && unauthorized) unauthorized(err);
    throw err;
  }
  return json;
}

const enc = encodeURIComponent;

export const optApi = {
  start: (req) => request('POST', 'api/v1/optimizations', req),
  list: () => request('GET', 'api/v1/optimizations?page_size=50'),
  get: (id) => request('GET', `api/v1/optimizations/${enc(id)}`),
  cancel: (id) => request('POST', `api/v1/optimizations/${enc(id)}:cancel`, {}),
  startBacktest: (req) => request('POST', 'api/v1/backtests', req),
  streamUrl: (id) => apiUrl(`api/v1/optimizations/${enc(id)}/stream:batches`),
  zipUrl: (id) => apiUrl(`api/v1/optimizations/${enc(id)}/archive.zip`),
};

function kindOf(ev) {
  for (const k of OPT_KINDS) if (ev[k] !== undefined) return k;
  return undefined;
}

// The Feed with an optimization's kinds: hands over [[kind, id, {[kind]: body}], …] per SSE message.
class OptimizationFeed extends Feed {
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
      list.push([kind, id, { [kind]: ev[kind], emitted_at: ev.emitted_at }]);
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
    this.closed = false;
    this.stats = { events: 0, duplicates: 0, drops: 0, reopens: 0 };
    this.feed = new OptimizationFeed(optApi.streamUrl(id), {
      events: (list, _lastId, stats) => {
        if (this.closed) return;
        Object.assign(this.stats, stats);
        if (list.length) onEvents(list);
      },
      state: (state, detail, stats) => {
        if (this.closed) return;
        Object.assign(this.stats, stats);
        if (state === 'done' || state === 'closed' || state === 'error') this.closed = true;
        onState(state, detail);
      },
      recover: (lastId) => recover(lastId),
    });
  }

  get lastId() {
    return this.feed.lastId;
  }

  start(afterId = 0) {
    this.feed.start(afterId);
  }

  close(state = 'closed') {
    this.feed.close(state);
    this.closed = true;
  }

  dispose() {
    this.closed = true;
    this.feed.stop();
  }
}
