// The Web Worker that reads an optimization's event stream for the page (js/opt-api.js):
// EventSource, resume, dedupe, JSON.parse and slimming each trial happen here, off the page's
// main thread; the page gets each SSE message's events in one postMessage.
//
// From the page: {type: 'start', url, afterId}, {type: 'close'}, {type: 'verdict', id, verdict}.
// To the page: {type: 'events', list, lastId, stats}, {type: 'state', state, detail, stats},
// {type: 'recover', id, lastId}.

import { OptimizationFeed } from './opt-api.js';

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
      feed = new OptimizationFeed(m.url, out);
      feed.start(m.afterId);
      break;
    case 'close':
      feed?.stop();
      break;
    case 'verdict':
      verdicts.get(m.id)?.(m.verdict);
      verdicts.delete(m.id);
      break;
    default:
      break;
  }
};
