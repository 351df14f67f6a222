// The Web Worker that reads a backtest's (js/stream.js) or an optimization's (js/opt-api.js)
// event stream for the page: EventSource, resume, dedupe and JSON.parse happen here, off the
// page's main thread; the page gets each SSE message's events, slimmed, in one postMessage.
//
// From the page: {type: 'start', url, afterId, kind} (kind 'optimization': an optimization's
// stream; else a backtest's), {type: 'reopen', afterId}, {type: 'close'},
// {type: 'verdict', id, verdict} (the answer to a recover request), {type: 'nodes', id, ids}.
// To the page: {type: 'events', list, lastId, stats}, {type: 'state', state, detail, stats},
// {type: 'recover', id, lastId}, {type: 'nodes', id, found}.

import { OptimizationFeed } from './opt-api.js';
import { Feed } from './stream.js';

let feed = null;
let seq = 0;
const verdicts = new Map(); // request id → resolve

const out = {
  events: (list, lastId, stats) => postMessage({ type: 'events', list, lastId, stats }),
  state: (state, detail, stats) => postMessage({ type: 'state', state, detail, stats }),
  recover: (lastId) => new Promise((resolve) => {
    const id = ++seq;
    verdicts.set(id, resolve);
    postMessage({ type: 'recover', id, lastId });
  }),
};

self.onmessage = (e) => {
  const m = e.data;
  switch (m.type) {
    case 'start':
      feed = m.kind === 'optimization' ? new OptimizationFeed(m.url, out) : new Feed(m.url, out);
      feed.start(m.afterId);
      break;
    case 'reopen':
      feed?.reopenFrom(m.afterId);
      break;
    case 'close':
      feed?.stop(); // the page has stopped listening: no 'closed' state back
      break;
    case 'verdict':
      verdicts.get(m.id)?.(m.verdict);
      verdicts.delete(m.id);
      break;
    case 'nodes':
      postMessage({ type: 'nodes', id: m.id, found: feed?.nodeEvents ? feed.nodeEvents(m.ids) : [] });
      break;
    default:
      break;
  }
};
