// A backtest's event stream over EventSource: resumes without gaps and never delivers an event twice.
//
// It reads the batched stream (`…/stream:batches`): each SSE message is a BacktestEventBatch of
// consecutive events, its `id:` the last one's id.
//
// EventSource reconnects by itself after a dropped connection and sends Last-Event-ID, which the
// gateway turns into the engine's exclusive cursor. When the browser gives up instead (a 503 from
// a gateway whose engine is restarting, say), we reopen it ourselves with ?after_event_id=. Every
// event id at or below the last one seen is ignored, so a replay can never duplicate a row.
//
// The reading (EventSource, resume, dedupe, JSON.parse) runs in a Web Worker (stream-worker.js):
// a decade's run is ~100 MB of JSON, and decoding and parsing it on the page's main thread was a
// third of the page's time there. The worker hands the page only what it draws, once per SSE
// message: every event but node events (kept in the worker; diagnostics ask for the few they
// show) and all but the last tick update of a message (the page shows the latest tick only).
// Where a worker cannot start, the same Feed runs on the page itself.
//
// Signed in, the page's session cookie (HttpOnly, js/session.js) goes with these same-origin
// EventSource requests, from the worker too: streams need no Authorization header.

export const KINDS = ['backtest_started', 'day_started', 'tick_update', 'node_event', 'trade_update',
  'day_completed', 'backtest_completed', 'backtest_failed', 'backtest_cancelled'];
export const TERMINAL = new Set(['backtest_completed', 'backtest_failed', 'backtest_cancelled']);
// Not "error": EventSource reserves that name for its own connection errors.
const STREAM_ERROR = 'stream_error';
const MAX_BACKOFF_MS = 10000;

function kindOf(ev) {
  for (const k of KINDS) if (ev[k] !== undefined) return k;
  return undefined;
}

/**
 * The stream itself, wherever it runs (a worker or the page).
 * @param {string} url the batched stream's URL
 * @param {object} out events(list, lastId, stats): accepted events, [[kind, id, event], …] in
 *   order (node events and all but the last tick update left out); state(state, detail, stats);
 *   recover(lastId) → Promise<'retry'|'stop'>: asked before reopening a stream the browser gave up on.
 */
export class Feed {
  constructor(url, out) {
    this.url = url;
    this.out = out;
    this.lastId = 0;
    this.es = null;
    this.closed = false;
    this.timer = 0;
    this.backoff = 500;
    this.stats = { events: 0, duplicates: 0, drops: 0, reopens: 0 };
    this.nodes = new Map(); // execution id → NodeEvent
    this._onMessage = this._onMessage.bind(this);
  }

  start(afterId = 0) {
    this.lastId = afterId;
    this._open(afterId);
  }

  // Reopen from `afterId` (≤ lastId replays what was seen; those events are dropped as duplicates).
  reopenFrom(afterId) {
    if (this.closed) return;
    this._teardown();
    this.stats.reopens++;
    this._open(afterId);
  }

  close(state = 'closed') {
    if (this.closed) return;
    this.stop();
    this.out.state(state, '', this.stats);
  }

  // Closed without a word (whoever listened has stopped listening).
  stop() {
    this.closed = true;
    this._teardown();
  }

  // The node events of these execution ids that the stream has brought: [[id, event], …].
  nodeEvents(ids) {
    const found = [];
    for (const id of ids) if (this.nodes.has(id)) found.push([id, this.nodes.get(id)]);
    return found;
  }

  _open(afterId) {
    const url = new URL(this.url);
    if (afterId > 0) url.searchParams.set('after_event_id', String(afterId));
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener('message', this._onMessage); // a batch has no `event:` name
    es.addEventListener(STREAM_ERROR, (e) => this._onStreamError(e));
    es.onopen = () => {
      this.backoff = 500;
      this.out.state('live', '', this.stats);
    };
    es.onerror = () => this._onError(es);
  }

  _teardown() {
    clearTimeout(this.timer);
    if (this.es) {
      this.es.onerror = null;
      this.es.close();
      this.es = null;
    }
  }

  _onMessage(e) {
    if (this.closed || e.target !== this.es) return;
    const received = performance.timeOrigin + performance.now(); // epoch ms, in a worker too
    const list = [];
    let tick = null;
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
      if (kind === 'node_event') {
        const body = ev.node_event;
        if (body?.execution_id) this.nodes.set(body.execution_id, body);
      } else if (kind === 'tick_update') {
        tick = [kind, id, { tick_update: ev.tick_update }];
      } else {
        const slim = { [kind]: ev[kind] };
        if (TERMINAL.has(kind)) {
          // When the engine appended it, and when its batch reached this reader: how far behind
          // the page is, and its own share of that (the page's benchmark reads both).
          slim.emitted_at = ev.emitted_at;
          slim.received_at = received;
          if (tick) list.push(tick);
          tick = null;
          terminal = true;
        }
        list.push([kind, id, slim]);
        if (terminal) break;
      }
    }
    if (tick) list.push(tick);
    this.out.events(list, this.lastId, this.stats); // even when empty: lastId and stats moved
    if (terminal) this.close('done');
  }

  _onStreamError(e) {
    // The engine failed mid-stream; the gateway ends the response and EventSource reconnects.
    let message = 'stream error';
    try { message = JSON.parse(e.data).message || message; } catch { /* keep the default */ }
    this.out.state('reconnecting', message, this.stats);
  }

  _onError(es) {
    if (this.closed || es !== this.es) return;
    this.stats.drops++;
    if (es.readyState === EventSource.CONNECTING) {
      this.out.state('reconnecting', '', this.stats);
      return;
    }
    // CLOSED: the browser will not retry (a 204, an HTTP error, a wrong content type).
    this._teardown();
    this.out.state('reconnecting', '', this.stats);
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.timer = setTimeout(async () => {
      if (this.closed) return;
      let verdict = 'retry';
      try { verdict = await this.out.recover(this.lastId); } catch { verdict = 'retry'; }
      if (this.closed) return;
      if (verdict === 'stop') this.close('done');
      else {
        this.stats.reopens++;
        this._open(this.lastId);
      }
    }, delay);
  }
}

/**
 * The page's handle on a stream: the Feed in a worker (or on the page where none starts).
 * @param {string} url the batched stream's URL
 * @param {object} handlers onEvent(kind, id, event) for each event handed over, in order;
 *   onState(state, detail); recover(lastId) → Promise<'retry'|'stop'>.
 */
export class BacktestStream {
  constructor(url, { onEvent, onState, recover }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.recover = recover;
    this.lastId = 0;        // the last event id handed to onEvent (or skipped as a node event or tick)
    this.closed = false;
    // Counters the page shows in its debug object (and the browser tests read), as the Feed counts them.
    this.stats = { events: 0, duplicates: 0, drops: 0, reopens: 0 };
    this.started = null;    // the cursor start() was given (null: not started yet)
    this.feed = null;       // the Feed, when it runs on the page
    this.worker = null;
    this.asks = new Map();  // request id → resolve, for node events asked of the worker
    this.seq = 0;
    this.out = {
      events: (list, lastId, stats) => this._events(list, lastId, stats),
      state: (state, detail, stats) => this._state(state, detail, stats),
      recover: (lastId) => this.recover(lastId),
    };
    try {
      this.worker = new Worker(new URL('./stream-worker.js', import.meta.url), { type: 'module', name: 'backtest-stream' });
      this.worker.onmessage = (e) => this._fromWorker(e.data);
      // The worker did not start (its script not served, say) or failed: read the stream here
      // instead, from the last event the page has.
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
    else this._post({ type: 'start', url: this.url, afterId });
  }

  // Reopen from `afterId` (≤ lastId replays what was seen; those events are dropped as duplicates).
  reopenFrom(afterId) {
    if (this.closed) return;
    if (this.feed) this.feed.reopenFrom(afterId);
    else this._post({ type: 'reopen', afterId });
  }

  close(state = 'closed') {
    if (this.closed) return;
    this.closed = true;
    this.feed?.stop();
    this._post({ type: 'close' });
    this.onState(state);
  }

  // Closed, and the node events kept for diagnostics let go of (a new run is opened).
  dispose() {
    this.close('closed');
    this.worker?.terminate();
    this.worker = null;
    for (const resolve of this.asks.values()) resolve([]);
    this.asks.clear();
  }

  // The node events of these execution ids the stream has brought (diagnostics fall back on
  // them when a day's file does not have them): Promise<Map<id, NodeEvent>>.
  async nodeEvents(ids) {
    if (this.feed) return new Map(this.feed.nodeEvents(ids));
    if (!this.worker || !ids.length) return new Map();
    const id = ++this.seq;
    const found = await new Promise((resolve) => {
      this.asks.set(id, resolve);
      this._post({ type: 'nodes', id, ids });
    });
    return new Map(found);
  }

  _post(message) {
    this.worker?.postMessage(message);
  }

  _onPage() {
    if (this.feed || this.closed) return;
    this.worker?.terminate();
    this.worker = null;
    this.feed = new Feed(this.url, this.out);
    this.feed.stats = { ...this.stats }; // the counts go on from the worker's
    if (this.started !== null) this.feed.start(this.lastId);
  }

  async _fromWorker(m) {
    switch (m.type) {
      case 'events':
        this._events(m.list, m.lastId, m.stats);
        break;
      case 'state':
        this._state(m.state, m.detail, m.stats);
        break;
      case 'recover': {
        let verdict = 'retry';
        try { verdict = await this.recover(m.lastId); } catch { verdict = 'retry'; }
        this._post({ type: 'verdict', id: m.id, verdict });
        break;
      }
      case 'nodes':
        this.asks.get(m.id)?.(m.found);
        this.asks.delete(m.id);
        break;
      default:
        break;
    }
  }

  _events(list, lastId, stats) {
    if (this.closed) return;
    Object.assign(this.stats, stats);
    for (const [kind, id, ev] of list) {
      this.lastId = id;
      this.onEvent(kind, id, ev);
    }
    this.lastId = lastId;
  }

  _state(state, detail, stats) {
    if (this.closed) return;
    Object.assign(this.stats, stats);
    if (state === 'done' || state === 'closed' || state === 'error') this.closed = true;
    this.onState(state, detail);
  }
}
