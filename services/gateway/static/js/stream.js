// A backtest's event stream over EventSource: resumes without gaps and never delivers an event twice.
//
// It reads the batched stream (`…/stream:batches`): each SSE message is a BacktestEventBatch of
// consecutive events, its `id:` the last one's id. A browser dispatches and the page parses one
// message per batch instead of one per event, which is most of the page's work on a long run.
//
// EventSource reconnects by itself after a dropped connection and sends Last-Event-ID, which the
// gateway turns into the engine's exclusive cursor. When the browser gives up instead (a 503 from
// a gateway whose engine is restarting, say), we reopen it ourselves with ?after_event_id=. Every
// event id at or below the last one seen is ignored, so a replay can never duplicate a row.

export const KINDS = ['backtest_started', 'day_started', 'tick_update', 'node_event', 'trade_update',
  'day_completed', 'backtest_completed', 'backtest_failed', 'backtest_cancelled'];
export const TERMINAL = new Set(['backtest_completed', 'backtest_failed', 'backtest_cancelled']);
// Not "error": EventSource reserves that name for its own connection errors.
const STREAM_ERROR = 'stream_error';
const MAX_BACKOFF_MS = 10000;

export class BacktestStream {
  /**
   * @param {string} url the batched stream's URL
   * @param {object} handlers onEvent(kind, id, event), onState(state, detail),
   *   recover(lastId) → Promise<'retry'|'stop'>: asked before reopening a stream the browser gave up on.
   */
  constructor(url, { onEvent, onState, recover }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.recover = recover;
    this.lastId = 0;
    this.es = null;
    this.closed = false;
    this.timer = 0;
    this.backoff = 500;
    // Counters the page shows in its debug object (and the browser tests read).
    this.stats = { events: 0, duplicates: 0, drops: 0, reopens: 0 };
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
    this.closed = true;
    this._teardown();
    this.onState(state);
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
      this.onState('live');
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
    for (const ev of JSON.parse(e.data).events || []) {
      const id = Number(ev.event_id);
      if (!(id > this.lastId)) {
        this.stats.duplicates++;
        continue;
      }
      this.lastId = id;
      this.stats.events++;
      const kind = KINDS.find((k) => k in ev);
      this.onEvent(kind, id, ev);
      if (TERMINAL.has(kind)) {
        this.close('done');
        return;
      }
    }
  }

  _onStreamError(e) {
    // The engine failed mid-stream; the gateway ends the response and EventSource reconnects.
    let message = 'stream error';
    try { message = JSON.parse(e.data).message || message; } catch { /* keep the default */ }
    this.onState('reconnecting', message);
  }

  _onError(es) {
    if (this.closed || es !== this.es) return;
    this.stats.drops++;
    if (es.readyState === EventSource.CONNECTING) {
      this.onState('reconnecting');
      return;
    }
    // CLOSED: the browser will not retry (a 204, an HTTP error, a wrong content type).
    this._teardown();
    this.onState('reconnecting');
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.timer = setTimeout(async () => {
      if (this.closed) return;
      let verdict = 'retry';
      try { verdict = await this.recover(this.lastId); } catch { verdict = 'retry'; }
      if (this.closed) return;
      if (verdict === 'stop') this.close('done');
      else {
        this.stats.reopens++;
        this._open(this.lastId);
      }
    }, delay);
  }
}
