// An option position's payoff diagram: P&L against the underlying's price at expiry (piecewise
// linear) and "now" (each leg priced by Black-Scholes at its entry or its exit), as inline SVG.
//
// Time to expiry is counted as the engine counts it (services/engine/options/pricing.py): years
// of TRADING time, 375-minute sessions (09:15-15:30 IST) and 252 sessions a year, up to the
// expiry day's 15:30 IST. Which days are sessions the caller says (the run's own days, where it
// knows them); by default every weekday, so an exchange holiday would count as a session.
// r = 6.5 %, no dividends, as the engine's RISK_FREE_RATE.

const RATE = 0.065;
const SESSION_MINUTES = 375;
const YEAR_MINUTES = SESSION_MINUTES * 252;
const OPEN_MINUTE = 9 * 60 + 15;  // 09:15, minutes after midnight IST
const IST_MS = 330 * 60_000;      // UTC+05:30
const DAY_MS = 86_400_000;
const SAMPLES = 121;              // points on the "now" curve

// Standard normal CDF through erfc (Numerical Recipes' erfcc, fractional error < 1.2e-7).
export function normCdf(x) {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
    + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
    + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - 0.5 * r : 0.5 * r;
}

// Black-Scholes price (points) of a European call ('CE') or put ('PE'); t in years, sigma and r
// annual fractions. At or past expiry: the intrinsic value.
export function bsPrice(type, spot, strike, t, sigma, r = RATE) {
  const call = type === 'CE';
  if (!(t > 0) || !(sigma > 0)) {
    const k = t > 0 ? strike * Math.exp(-r * t) : strike;
    return Math.max(call ? spot - k : k - spot, 0);
  }
  const v = sigma * Math.sqrt(t);
  const d1 = (Math.log(spot / strike) + (r + 0.5 * sigma * sigma) * t) / v;
  const d2 = d1 - v;
  const k = strike * Math.exp(-r * t);
  return call ? spot * normCdf(d1) - k * normCdf(d2) : k * normCdf(-d2) - spot * normCdf(-d1);
}

export const isWeekday = (date) => { const d = new Date(`${date}T00:00:00Z`).getUTCDay(); return d !== 0 && d !== 6; };

// Years of trading time from `iso` (ISO 8601 with offset) to `expiry` (YYYY-MM-DD) 15:30 IST;
// `isSession(date)` says whether a YYYY-MM-DD date is a trading session.
export function tradingYears(iso, expiry, isSession = isWeekday) {
  const from = Date.parse(iso);
  const close = Date.parse(`${expiry}T15:30:00+05:30`);
  if (!(close > from)) return 0;
  const local = from + IST_MS;
  const day = Math.floor(local / DAY_MS);
  const minute = (local - day * DAY_MS) / 60_000;
  const date = (d) => new Date(d * DAY_MS).toISOString().slice(0, 10);
  let minutes = isSession(date(day)) ? Math.min(SESSION_MINUTES, Math.max(0, OPEN_MINUTE + SESSION_MINUTES - Math.max(minute, OPEN_MINUTE))) : 0;
  const last = Math.floor((close + IST_MS) / DAY_MS);
  for (let d = day + 1; d <= last; d += 1) if (isSession(date(d))) minutes += SESSION_MINUTES;
  return minutes / YEAR_MINUTES;
}

// One leg as the curves need it: +1 bought / -1 sold, units, premium paid, and its "now" pricing.
function legTerms(t, at, isSession) {
  const exit = at === 'exit' && t.exit_time;
  return {
    type: t.option_type,
    strike: Number(t.strike),
    sign: t.side === 'buy' ? 1 : -1,
    units: Number(t.quantity) || Number(t.lots) * Number(t.lot_size),
    premium: Number(t.entry_price),
    years: tradingYears(exit ? t.exit_time : t.entry_time, t.expiry, isSession),
    sigma: Number(exit ? t.iv_at_exit || t.iv_at_entry : t.iv_at_entry) / 100,
  };
}

const intrinsic = (leg, s) => Math.max(leg.type === 'CE' ? s - leg.strike : leg.strike - s, 0);

// P&L (currency, before costs) of the legs at expiry and "now" (`at`: 'exit' or 'entry'), over
// spot prices from the lowest strike to the highest, widened each side by twice the legs'
// premiums (about where the breakevens of a straddle or strangle lie, twice over), at least
// 1.5 % and at most 5 % of the strike, and wider still if a fill's spot is out of that.
export function payoffCurves(trades, at = 'exit', isSession = isWeekday) {
  const legs = trades.map((t) => legTerms(t, at, isSession));
  const strikes = [...new Set(legs.map((l) => l.strike))].sort((a, b) => a - b);
  const top = strikes[strikes.length - 1];
  const spots = trades.flatMap((t) => [Number(t.underlying_at_entry), Number(t.underlying_at_exit)]).filter((s) => s > 0);
  const premiums = legs.reduce((sum, l) => sum + (l.premium || 0), 0);
  const pad = Math.min(0.05 * top, Math.max(0.015 * top, 2 * premiums));
  const lo = Math.min(strikes[0] - pad, ...spots);
  const hi = Math.max(top + pad, ...spots);
  const pnl = (price) => (s) => legs.reduce((sum, l) => sum + l.sign * l.units * (price(l, s) - l.premium), 0);
  const atExpiry = pnl(intrinsic);
  const now = pnl((l, s) => bsPrice(l.type, s, l.strike, l.years, l.sigma));
  // At expiry the P&L is linear between strikes: its corners are all it takes.
  const expiry = [lo, ...strikes.filter((k) => k > lo && k < hi), hi].map((s) => [s, atExpiry(s)]);
  const xs = Array.from({ length: SAMPLES }, (_, i) => lo + ((hi - lo) * i) / (SAMPLES - 1));
  return { lo, hi, strikes, expiry, now: xs.map((s) => [s, now(s)]), atExpiry, atNow: now };
}

// ---- the SVG ------------------------------------------------------------------------------

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 270;
const M = { l: 58, r: 14, t: 26, b: 30 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of children) if (c) node.append(c instanceof Node ? c : String(c));
  return node;
}

// About `count` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^k).
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compact = (v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : grouped.format(v)).replace('-', '−');
const signed = (v) => `${v > 0 ? '+' : ''}${grouped.format(v)}`.replace('-', '−');

// The diagram of `trades` (the legs of one position); `at` says which fills "now" is priced at.
export function payoffChart(trades, at = 'exit', isSession = isWeekday) {
  const c = payoffCurves(trades, at, isSession);
  const values = [...c.expiry, ...c.now].map(([, v]) => v);
  let ymin = Math.min(0, ...values);
  let ymax = Math.max(0, ...values);
  const pad = (ymax - ymin) * 0.08 || 1;
  ymin -= pad;
  ymax += pad;
  const x = (s) => M.l + ((s - c.lo) / (c.hi - c.lo)) * (W - M.l - M.r);
  const y = (v) => M.t + ((ymax - v) / (ymax - ymin)) * (H - M.t - M.b);
  const path = (pts) => pts.map(([s, v], i) => `${i ? 'L' : 'M'}${x(s).toFixed(1)} ${y(v).toFixed(1)}`).join(' ');
  const underlying = String(trades[0]?.symbol || '').split(':')[0] || 'underlying';

  const root = svg('svg', {
    class: 'payoff', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'payoff-chart',
    'aria-label': `Payoff of ${trades[0]?.position_id || 'the position'}: P&L against ${underlying} at expiry and now (at ${at})`,
    'data-price-min': c.lo, 'data-price-max': c.hi, 'data-left': M.l, 'data-right': W - M.r,
  });
  for (const v of ticks(ymin, ymax, 5)) {
    root.append(svg('line', { class: 'grid', x1: M.l, x2: W - M.r, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: M.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, compact(v)));
  }
  for (const s of ticks(c.lo, c.hi, 7)) {
    root.append(svg('line', { class: 'grid', x1: x(s), x2: x(s), y1: M.t, y2: H - M.b }),
      svg('text', { class: 'tick', x: x(s), y: H - M.b + 14, 'text-anchor': 'middle' }, grouped.format(s)));
  }
  root.append(svg('text', { class: 'axis', x: W - M.r, y: H - 3, 'text-anchor': 'end' }, `${underlying} at expiry`),
    svg('text', { class: 'axis', x: 4, y: 12 }, 'P&L'),
    svg('line', { class: 'zero', x1: M.l, x2: W - M.r, y1: y(0), y2: y(0) }));
  for (const k of c.strikes) {
    const b = H - M.b;
    const px = x(k);
    root.append(svg('polygon', { class: 'strike', points: `${px},${b - 6} ${px + 4},${b} ${px - 4},${b}`, 'data-testid': 'payoff-strike' },
      svg('title', {}, `strike ${grouped.format(k)}`)));
  }
  root.append(...spotMarkers(trades, x, y(ymax)));
  root.append(svg('path', { class: 'expiry', d: path(c.expiry), 'data-testid': 'payoff-expiry' }),
    svg('path', { class: 'now', d: path(c.now), 'data-testid': 'payoff-now' }));
  root.append(legend(at), ...hover(root, c));
  return root;
}

// Dashed lines at the underlying's price at the position's entry and at its (last) exit.
function spotMarkers(trades, x, top) {
  const entry = Number(trades[0]?.underlying_at_entry);
  const last = trades.reduce((a, t) => ((t.exit_time || '') > (a.exit_time || '') ? t : a), trades[0] || {});
  const exit = Number(last.underlying_at_exit);
  const out = [];
  const mark = (s, label, cls, anchor) => {
    if (!(s > 0)) return;
    out.push(svg('line', { class: `spot ${cls}`, x1: x(s), x2: x(s), y1: top, y2: H - M.b, 'data-testid': `payoff-spot-${cls}` }),
      svg('text', { class: `spot-label ${cls}`, x: x(s) + (anchor === 'start' ? 3 : -3), y: top + 11, 'text-anchor': anchor },
        `${label} ${grouped.format(s)}`));
  };
  // Labels point away from each other, so close spots do not print over one another.
  mark(entry, 'entry', 'entry', exit >= entry ? 'end' : 'start');
  mark(exit, 'exit', 'exit', exit >= entry ? 'start' : 'end');
  return out;
}

function legend(at) {
  const g = svg('g', { class: 'legend', transform: `translate(${W - M.r - 250} 8)` });
  g.append(svg('line', { class: 'expiry', x1: 0, x2: 18, y1: 5, y2: 5 }), svg('text', { x: 22, y: 9 }, 'at expiry'),
    svg('line', { class: 'now', x1: 92, x2: 110, y1: 5, y2: 5 }), svg('text', { x: 114, y: 9 }, `now (at ${at}, Black-Scholes)`));
  return g;
}

// A crosshair that reads both curves at the pointer's price.
function hover(root, c) {
  const line = svg('line', { class: 'cursor', y1: M.t, y2: H - M.b, visibility: 'hidden' });
  const text = svg('text', { class: 'readout', x: M.l, y: 12 });
  root.addEventListener('pointermove', (e) => {
    const box = root.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * W;
    if (px < M.l || px > W - M.r) return;
    const s = c.lo + ((px - M.l) / (W - M.l - M.r)) * (c.hi - c.lo);
    line.setAttribute('x1', px);
    line.setAttribute('x2', px);
    line.setAttribute('visibility', 'visible');
    text.textContent = `${grouped.format(s)}: expiry ${signed(c.atExpiry(s))} · now ${signed(c.atNow(s))}`;
  });
  root.addEventListener('pointerleave', () => {
    line.setAttribute('visibility', 'hidden');
    text.textContent = '';
  });
  return [line, text];
}
