// Small canvas plots for the analytics and compare views: lines over trading days (rolling
// Sharpe and volatility, runs' equity side by side) and a histogram with a curve over it (daily
// returns and the fitted normal). The trade scatter is in scatter.js.
//
// A plot redraws its whole canvas (one pass over its points; a line of more points than pixels
// is drawn as each pixel column's min and max), when given data and when its box changes size
// (a ResizeObserver: shown after being hidden, the window resized), at most once per frame.
// Hovering shows the values under the pointer in a tooltip; nothing is redrawn for it.

import { fmtNum } from './dom.js';

const css = getComputedStyle(document.documentElement);
export const color = (name) => css.getPropertyValue(name).trim();
export const PAD = { left: 58, right: 12, top: 10, bottom: 26 };
// Lines of the compare view and categories of the scatter, in order.
export const PALETTE = ['#4aa3ff', '#f0b232', '#c58af9', '#2fc4b2', '#ff7eb6', '#9ccc65', '#ff9f43', '#8d9cff', '#e5e5e5', '#b08968'];

// The canvas sized to its parent's width (and `height`) in device pixels, cleared; null while
// it is not laid out (hidden).
export function setup(canvas, height) {
  const width = canvas.parentElement?.clientWidth || 0;
  if (!width || canvas.offsetParent === null) return null;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '10px system-ui, sans-serif';
  return { ctx, width, height };
}

// About `count` round values spanning [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart).
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export function fmtTick(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${fmtNum(v / 1e6)}M`;
  if (a >= 1e4) return `${fmtNum(v / 1e3)}k`;
  return String(Math.round(v * 1000) / 1000);
}

// [lo, hi] of the finite values of arrays (and of `extra`), widened by `margin` of the span.
export function extent(arrays, extra = [], margin = 0.05) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  for (const v of extra) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (hi === lo) return [lo - 1, hi + 1];
  const pad = (hi - lo) * margin;
  return [lo - pad, hi + pad];
}

// A colour key for a legend.
export function swatch(background) {
  const s = document.createElement('span');
  s.className = 'swatch';
  s.style.background = background;
  return s;
}

// A value as a Number: proto3 JSON writes NaN and infinities (and int64) as strings.
export const num = (v) => (v === undefined || v === null || v === '' ? NaN : Number(v));

// Redraws a plot when its box changes size, once per frame.
function watchSize(plot, box) {
  let last = 0;
  new ResizeObserver(() => {
    const w = box.offsetParent === null ? 0 : box.clientWidth; // 0: hidden (drawn again when shown)
    if (w && w !== last) plot.schedule();
    last = w;
  }).observe(box);
}

export class Plot {
  constructor(canvas, tooltip, height) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.height = height;
    this.frame = 0;
    this.geometry = null;
    // Hovering is answered once per frame, for the pointer's latest position.
    this.pointer = null;
    canvas.addEventListener('mousemove', (e) => {
      if (!this.pointer) {
        requestAnimationFrame(() => {
          const last = this.pointer;
          this.pointer = null;
          if (last) this._hover(last);
        });
      }
      this.pointer = e;
    });
    canvas.addEventListener('mouseleave', () => {
      this.pointer = null;
      this._leave();
    });
    watchSize(this, canvas.parentElement);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  _leave() {
    this.tooltip.hidden = true;
    if (this.guide) this.guide.hidden = true;
  }

  _tip(lines, mx, my) {
    this.tooltip.replaceChildren(...lines.map((l) => {
      const d = document.createElement('div');
      if (typeof l === 'string') d.textContent = l;
      else d.append(swatch(l.color), l.text);
      return d;
    }));
    this.tooltip.hidden = false;
    const r = this.canvas.getBoundingClientRect();
    const left = Math.min(mx + 14, r.width - this.tooltip.offsetWidth - 4);
    const top = my + 14 + this.tooltip.offsetHeight > r.height ? Math.max(0, my - 14 - this.tooltip.offsetHeight) : my + 14;
    this.tooltip.style.transform = `translate(${Math.max(0, left)}px, ${top}px)`;
  }

  _axes(ctx, width, height, yTicks, y, yLabel) {
    const pw = width - PAD.left - PAD.right;
    ctx.strokeStyle = '#1a2230';
    ctx.lineWidth = 1;
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of yTicks) {
      const py = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(PAD.left, py);
      ctx.lineTo(PAD.left + pw, py);
      ctx.stroke();
      ctx.fillText(fmtTick(v), PAD.left - 4, py);
    }
    ctx.strokeStyle = color('--line');
    ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw, height - PAD.top - PAD.bottom);
    if (yLabel) {
      ctx.save();
      ctx.translate(10, PAD.top + (height - PAD.top - PAD.bottom) / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'center';
      ctx.fillText(yLabel, 0, 0);
      ctx.restore();
    }
  }
}

/**
 * Lines over trading days, x by the day's index (as trading charts space days).
 * `set(dates, series)`: dates ['YYYY-MM-DD' …]; series [{name, color, values (numbers, one a
 * date; NaN: no point), from?, to? (indexes: outside them the line is drawn faint)}].
 * The canvas says what it holds: data-points (dates), data-lines (series drawn).
 */
export class LineChart extends Plot {
  constructor(canvas, tooltip, { height = 200, yLabel = '', zero = false, format = fmtNum, unit = '' } = {}) {
    super(canvas, tooltip, height);
    this.yLabel = yLabel;
    this.zero = zero;
    this.format = format;
    this.unit = unit;
    this.dates = [];
    this.series = [];
    // A vertical line at the hovered day.
    this.guide = document.createElement('div');
    this.guide.className = 'plot-guide';
    this.guide.hidden = true;
    canvas.parentElement.append(this.guide);
    canvas.dataset.points = '0';
    canvas.dataset.lines = '0';
  }

  set(dates, series) {
    this.dates = dates;
    this.series = series;
    this.draw();
  }

  draw() {
    const s = setup(this.canvas, this.height);
    if (!s) return false;
    const { ctx, width, height } = s;
    const n = this.dates.length;
    const pw = width - PAD.left - PAD.right;
    const ph = height - PAD.top - PAD.bottom;
    const [lo, hi] = extent(this.series.map((x) => x.values), this.zero ? [0] : []);
    const y = (v) => PAD.top + ph - ((v - lo) / (hi - lo)) * ph;
    const x = (i) => PAD.left + (n > 1 ? (i / (n - 1)) * pw : pw / 2);
    this.geometry = { x, pw, n };
    this._axes(ctx, width, height, niceTicks(lo, hi, Math.max(2, Math.round(ph / 40))), y, this.yLabel);
    if (this.zero && lo < 0 && hi > 0) {
      ctx.strokeStyle = color('--muted');
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(PAD.left, Math.round(y(0)) + 0.5);
      ctx.lineTo(PAD.left + pw, Math.round(y(0)) + 0.5);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // Dates along the bottom, about every 110 px.
    ctx.fillStyle = color('--muted');
    ctx.textBaseline = 'top';
    ctx.textAlign = 'center';
    if (n) {
      const every = Math.max(1, Math.ceil((n * 110) / pw));
      for (let i = 0; i < n; i += every) ctx.fillText(this.dates[i], Math.min(Math.max(x(i), PAD.left + 30), width - PAD.right - 30), height - PAD.bottom + 5);
    }
    let drawn = 0;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    for (const line of this.series) {
      if (!n) break;
      const from = Math.max(0, line.from ?? 0);
      const to = Math.min(n - 1, line.to ?? n - 1);
      ctx.strokeStyle = line.color;
      if (from > 0) this._path(ctx, line.values, 0, from, x, y, 0.35);
      if (to < n - 1) this._path(ctx, line.values, to, n - 1, x, y, 0.35);
      this._path(ctx, line.values, from, to, x, y, 1);
      drawn += 1;
    }
    this.canvas.dataset.points = String(n);
    this.canvas.dataset.lines = String(drawn);
    return true;
  }

  // values[a..b] as a line; more points than pixels: each pixel column's first, min, max and last.
  _path(ctx, values, a, b, x, y, alpha) {
    ctx.globalAlpha = alpha;
    ctx.beginPath();
    const perPixel = (b - a + 1) / Math.max(1, x(b) - x(a));
    let pen = false;
    if (perPixel <= 2) {
      for (let i = a; i <= b; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(x(i), y(v));
        else ctx.moveTo(x(i), y(v));
        pen = true;
      }
    } else {
      let col = -1;
      let min = 0;
      let max = 0;
      let last = 0;
      const flush = () => {
        if (col < 0) return;
        ctx.lineTo(col, y(min));
        ctx.lineTo(col, y(max));
        ctx.lineTo(col, y(last));
      };
      for (let i = a; i <= b; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) {
          flush();
          col = -1;
          pen = false;
          continue;
        }
        const c = Math.round(x(i));
        if (c !== col) {
          flush();
          if (pen) ctx.lineTo(c, y(v));
          else ctx.moveTo(c, y(v));
          pen = true;
          col = c;
          min = max = v;
        }
        if (v < min) min = v;
        if (v > max) max = v;
        last = v;
      }
      flush();
    }
    ctx.stroke();
    ctx.globalAlpha = 1;
  }

  _hover(e) {
    const g = this.geometry;
    if (!g || !g.n) return;
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    const i = Math.round(g.n > 1 ? ((mx - PAD.left) / g.pw) * (g.n - 1) : 0);
    if (i < 0 || i >= g.n) {
      this._leave();
      return;
    }
    const { guide } = this;
    guide.style.transform = `translateX(${Math.round(g.x(i))}px)`;
    guide.style.top = `${PAD.top}px`;
    guide.style.height = `${this.height - PAD.top - PAD.bottom}px`;
    guide.hidden = false;
    this._tip([this.dates[i], ...this.series.map((s) => ({ color: s.color, text: `${s.name} ${this.format(s.values[i])}${this.unit}` }))], mx, my);
  }
}

/**
 * Bars of a histogram with a curve over them: edges (bins + 1, ascending), counts and curve
 * (one a bin). data-bins on the canvas: the bins drawn.
 */
export class Histogram extends Plot {
  constructor(canvas, tooltip, { height = 220, xLabel = '', curveLabel = '' } = {}) {
    super(canvas, tooltip, height);
    this.xLabel = xLabel;
    this.curveLabel = curveLabel;
    this.edges = [];
    this.counts = [];
    this.curve = [];
    canvas.dataset.bins = '0';
  }

  set(edges, counts, curve) {
    this.edges = edges;
    this.counts = counts;
    this.curve = curve;
    this.draw();
  }

  draw() {
    const s = setup(this.canvas, this.height);
    if (!s) return false;
    const { ctx, width, height } = s;
    const bins = this.counts.length;
    const pw = width - PAD.left - PAD.right;
    const ph = height - PAD.top - PAD.bottom;
    const x0 = this.edges[0] ?? 0;
    const x1 = this.edges[bins] ?? 1;
    const [, top] = extent([this.counts, this.curve], [0], 0.08);
    const x = (v) => PAD.left + ((v - x0) / (x1 - x0 || 1)) * pw;
    const y = (v) => PAD.top + ph - (v / (top || 1)) * ph;
    this.geometry = { x, x0, x1, pw, bins };
    this._axes(ctx, width, height, niceTicks(0, top, Math.max(2, Math.round(ph / 40))), y, 'days');
    ctx.fillStyle = 'rgba(74, 163, 255, 0.55)';
    for (let i = 0; i < bins; i++) {
      const c = this.counts[i];
      if (!(c > 0)) continue;
      const a = x(this.edges[i]);
      const b = x(this.edges[i + 1]);
      ctx.fillRect(a + 0.5, y(c), Math.max(1, b - a - 1), PAD.top + ph - y(c));
    }
    ctx.strokeStyle = color('--warn');
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < bins; i++) {
      const mid = (this.edges[i] + this.edges[i + 1]) / 2;
      if (i) ctx.lineTo(x(mid), y(this.curve[i]));
      else ctx.moveTo(x(mid), y(this.curve[i]));
    }
    ctx.stroke();
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    if (bins) {
      for (const v of niceTicks(x0, x1, Math.max(2, Math.round(pw / 50)))) ctx.fillText(fmtTick(v), x(v), height - PAD.bottom + 5);
      if (x0 < 0 && x1 > 0) {
        ctx.strokeStyle = color('--muted');
        ctx.setLineDash([3, 3]);
        ctx.beginPath();
        ctx.moveTo(Math.round(x(0)) + 0.5, PAD.top);
        ctx.lineTo(Math.round(x(0)) + 0.5, PAD.top + ph);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    ctx.textAlign = 'right';
    ctx.fillText(this.xLabel, width - PAD.right - 4, PAD.top + 4);
    this.canvas.dataset.bins = String(bins);
    return true;
  }

  _hover(e) {
    const g = this.geometry;
    if (!g || !g.bins) return;
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    const v = g.x0 + ((mx - PAD.left) / g.pw) * (g.x1 - g.x0);
    let i = 0;
    while (i < g.bins - 1 && v >= this.edges[i + 1]) i++;
    if (v < g.x0 || v > g.x1) {
      this._leave();
      return;
    }
    this._tip([`${fmtNum(this.edges[i])} … ${fmtNum(this.edges[i + 1])} %`, `${this.counts[i]} days`,
      `${this.curveLabel} ${fmtNum(this.curve[i])}`], mx, my);
  }
}
