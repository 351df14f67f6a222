// Small DOM and formatting helpers. Text always goes in through textContent (never innerHTML).

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const num2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function fmtMoney(v) {
  const n = Number(v);
  return Number.isFinite(n) ? money.format(n) : '—';
}

export function fmtSigned(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return '—';
  return (n > 0 ? '+' : '') + money.format(n);
}

export function fmtPct(v, signed = false) {
  const n = Number(v);
  if (!Number.isFinite(n)) return '—';
  return (signed && n > 0 ? '+' : '') + num2.format(n) + ' %';
}

export const fmtInt = (v) => (Number.isFinite(Number(v)) ? int.format(Number(v)) : '—');
export const fmtNum = (v) => (Number.isFinite(Number(v)) ? num2.format(Number(v)) : '—');

// A condition value: times of day arrive as minutes since midnight for `time` operands.
export function fmtValue(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v ?? '—');
  return Math.abs(n) >= 1000 ? num2.format(n) : String(Math.round(n * 10000) / 10000);
}

export function signClass(v) {
  const n = Number(v);
  return n > 0 ? 'up' : n < 0 ? 'down' : '';
}

// "2024-01-01T10:40:00+05:30" → "10:40" (exchange-local time of day, as the engine writes it).
export const timeOfDay = (iso) => (iso ? iso.slice(11, 16) : '');
export const dateOf = (iso) => (iso ? iso.slice(0, 10) : '');

// Exchange-local wall-clock time as epoch seconds "in UTC", so that charts (which show UTC)
// print the exchange's own clock.
export function wallSeconds(iso) {
  const s = iso.length >= 19 ? iso.slice(0, 19) : `${iso.slice(0, 10)}T00:00:00`;
  return Math.floor(Date.parse(`${s}Z`) / 1000);
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 1) return '<1 s';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export const statusName = (s) => String(s || '').replace('BACKTEST_STATUS_', '');
