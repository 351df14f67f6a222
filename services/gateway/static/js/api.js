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

// Called with the ApiError of any 401 (no credentials, or a key revoked since): the page goes
// back to its sign-in form. The session calls themselves answer their callers instead.
let unauthorized = null;

export function onUnauthorized(handler) {
  unauthorized = handler;
}

// Every call of the API (opt-api.js's too): JSON in and out, ApiError on a failure.
export async function request(method, path, body, { own401 = false } = {}) {
  // The session cookie (HttpOnly, set by POST api/v1/session) goes with every same-origin request.
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(apiUrl(path), init);
  return answer(res.status, await res.text(), own401);
}

function answer(status, text, own401 = false) {
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text.slice(0, 200) }; }
  if (status < 200 || status > 299) {
    const err = new ApiError(status, json);
    if (status === 401 && !own401 && unauthorized) unauthorized(err);
    throw err;
  }
  return json;
}

// A file as the raw body of a POST (an upload: `:upload` routes), with the session cookie as
// `request` sends it (the browser adds the Origin the gateway checks). XMLHttpRequest, not
// fetch, for its upload progress: onProgress(sent, total) while the body goes out, then
// onSent() once all of it has (the server is still reading and checking it). The File is
// streamed from disk by the browser, never read into memory here.
export function upload(path, file, { onProgress, onSent } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl(path));
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    if (onProgress) xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    if (onSent) xhr.upload.addEventListener('load', () => onSent());
    xhr.addEventListener('load', () => {
      try {
        resolve(answer(xhr.status, xhr.responseText));
      } catch (err) {
        reject(err);
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, { message: 'the upload failed (network error)' })));
    xhr.addEventListener('abort', () => reject(new ApiError(0, { message: 'the upload was aborted' })));
    xhr.send(file);
  });
}

const enc = encodeURIComponent;

export const api = {
  // Who is calling (GET /api/v1/me): {user_id, role, auth_method: 'api_key'|'jwt'|'local', quotas}.
  me: () => request('GET', 'api/v1/me', undefined, { own401: true }),
  // Sign in: the gateway checks the token with the engine and keeps it in an HttpOnly cookie.
  signIn: (token) => request('POST', 'api/v1/session', { token }, { own401: true }),
  signOut: () => request('DELETE', 'api/v1/session', undefined, { own401: true }),
  datasets: () => request('GET', 'api/v1/datasets'),
  dataset: (symbol) => request('GET', `api/v1/datasets/${enc(symbol)}`),
  deleteDataset: (symbol) => request('DELETE', `api/v1/datasets/${enc(symbol)}`),
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
