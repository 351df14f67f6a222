// The Web Worker that fetches and parses a run's analytics for the page (analytics-data.js):
// JSON.parse of a decade's ~12 MB happens here, and the trades go back as columns whose typed
// arrays are handed over without a copy.
//
// From the page: {id, url}. To the page: {id, ok: true, data} or {id, ok: false, status, body}
// (status 0: the request did not get an answer).

import { splitAnalytics, transferables } from './analytics-data.js';

self.onmessage = async (e) => {
  const { id, url } = e.data;
  let res;
  let text;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    text = await res.text();
  } catch (err) {
    postMessage({ id, ok: false, status: 0, body: { message: String(err?.message || err) } });
    return;
  }
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text.slice(0, 200) }; }
  if (!res.ok) {
    postMessage({ id, ok: false, status: res.status, body: json });
    return;
  }
  const data = splitAnalytics(json);
  postMessage({ id, ok: true, data }, transferables(data.trades));
};
