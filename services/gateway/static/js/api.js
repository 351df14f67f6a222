// The gateway's REST API, relative to the page (so a path prefix in front of the gateway works).

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }

  // Field problems of a google.rpc.BadRequest detail, as [{field, description}].
  get violations() {
    const out = [];
    for (const d of this.body?.details || []) {
      for (const v of d.field_violations || d.fieldViolations || []) out.push(v);
    }
    return out;
  }
}

export function apiUrl(path) {
  return new URL(path.replace(/^\//, ''), document.baseURI).toString();
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(apiUrl(path), init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text.slice(0, 200) }; }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

const enc = encodeURIComponent;

export const api = {
  datasets: () => request('GET', 'api/v1/datasets'),
  examples: () => request('GET', 'ui/strategies.json'),
  validate: (strategy) => request('POST', 'api/v1/strategies:validate', { strategy }),
  start: (req) => request('POST', 'api/v1/backtests', req),
  list: () => request('GET', 'api/v1/backtests?page_size=50'),
  get: (id) => request('GET', `api/v1/backtests/${enc(id)}?omit_days=true`),
  cancel: (id) => request('POST', `api/v1/backtests/${enc(id)}:cancel`, {}),
  day: (id, date) => request('GET', `api/v1/backtests/${enc(id)}/days/${enc(date)}`),
  streamUrl: (id) => apiUrl(`api/v1/backtests/${enc(id)}/stream:batches`),
  runZipUrl: (id) => apiUrl(`api/v1/backtests/${enc(id)}/archive.zip`),
  dayZipUrl: (id, date) => apiUrl(`api/v1/backtests/${enc(id)}/days/${enc(date)}/archive.zip`),
};
