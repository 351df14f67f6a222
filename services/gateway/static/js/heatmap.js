// Canvas plots of an optimization's trials: a heatmap of two parameters (a cell per pair of
// values, coloured by a metric) and a scatter of two objectives (the Pareto front drawn over it).
//
// Both take trials as they arrive (`add`) and draw at most once per animation frame (`draw`
// redraws the whole canvas: ≤ 3,600 cells or 10,000 points, a few milliseconds), so a sweep of
// 10,000 trials streams in without a long task.

import { fmtNum } from './dom.js';

const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue(name).trim();
const MAX_CATEGORIES = 120; // a range with more grid values than this is binned
const BINS = 40;
const PAD = { left: 52, right: 10, top: 8, bottom: 34 };

const fmtAxis = (v) => {
  if (typeof v !== 'number') return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Math.round(v * 1000) / 1000);
};

// One parameter's axis, from its domain in the ParameterSpace: the grid values (or choices) when
// there are few, else BINS equal bins of the range (on a log scale for `log` ranges).
export function axisOf(p) {
  if (!p) return { name: '', labels: [''], index: () => 0 };
  if (p.choices) {
    const values = (p.choices.values || []);
    const labels = values.map((v) => String(v));
    return { name: p.name, labels, index: (v) => labels.indexOf(String(v)) };
  }
  const r = p.int_range || p.float_range || {};
  const low = Number(r.low || 0);
  const high = Number(r.high || 0);
  const step = Number(r.step || (p.int_range ? 1 : 0));
  const n = step > 0 ? Math.floor((high - low) / step + 1e-9) + 1 : Infinity;
  if (n <= MAX_CATEGORIES) {
    const labels = Array.from({ length: n }, (_, k) => fmtAxis(Math.round((low + k * step) * 1e9) / 1e9));
    return { name: p.name, labels, index: (v) => Math.round((Number(v) - low) / step) };
  }
  const log = !!r.log && low > 0;
  const f = log ? Math.log : (x) => x;
  const a = f(low);
  const span = f(high) - a || 1;
  const labels = Array.from({ length: BINS }, (_, k) => {
    const mid = a + ((k + 0.5) / BINS) * span;
    return fmtAxis(log ? Math.exp(mid) : mid);
  });
  return { name: p.name, labels, index: (v) => Math.min(BINS - 1, Math.max(0, Math.floor(((f(Number(v)) - a) / span) * BINS))) };
}

// red (worst) → grey → green (best): PALETTE[round(t * 100)] for t in [0, 1], as [r, g, b] and CSS.
const PALETTE = Array.from({ length: 101 }, (_, k) => {
  const t = k / 100;
  const lo = [229, 72, 77];
  const mid = [58, 68, 82];
  const hi = [38, 166, 91];
  const [a, b, u] = t < 0.5 ? [lo, mid, t * 2] : [mid, hi, (t - 0.5) * 2];
  const rgb = a.map((x, i) => Math.round(x + (b[i] - x) * u));
  return { rgb, css: `rgb(${rgb.join(',')})` };
});
const EMPTY = { rgb: [15, 20, 27], css: '#0f141b' };
const INFEASIBLE = { rgb: [42, 51, 65], css: '#2a3341' };
// Above this many cells the map is painted one pixel per cell into an image, then scaled up.
const PIXEL_CELLS = 1600;

function setup(canvas, height) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(200, canvas.parentElement.clientWidth);
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '10px system-ui, sans-serif';
  return { ctx, width, height };
}

function metricOf(t, metric) {
  if (metric.startsWith('objective:')) return t.objectives[Number(metric.slice(10))];
  const v = t.metrics?.[metric];
  return v === undefined || v === null ? 0 : Number(v); // proto3 JSON leaves zero values out only when asked
}

export class Heatmap {
  constructor(canvas, tooltip, legend) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.legend = legend;
    this.height = 320;
    this.reset();
    canvas.addEventListener('mousemove', (e) => this._hover(e));
    canvas.addEventListener('mouseleave', () => { this.tooltip.hidden = true; });
  }

  reset() {
    this.x = axisOf(null);
    this.y = axisOf(null);
    this.metric = 'objective:0';
    this.sign = 1;
    this.label = '';
    this.names = [];
    this.cells = new Map(); // index y * nx + x → {trial, value, count}
    this.min = Infinity;
    this.max = -Infinity;
    this.dirty = true;
    this.geometry = null;
    this.canvas.dataset.cells = '0';
  }

  // Axes and metric: x and y are Parameter messages (y may be null), metric 'objective:i' or a
  // Metrics field, sign +1 when higher is better.
  configure({ x, y, metric, sign, label, names }, trials) {
    this.x = axisOf(x);
    this.y = axisOf(y);
    this.metric = metric;
    this.sign = sign;
    this.label = label;
    this.names = names;
    this.cells = new Map();
    this.min = Infinity;
    this.max = -Infinity;
    this.add(trials);
    this.dirty = true;
  }

  get filled() {
    return this.cells.size;
  }

  add(trials) {
    const nx = this.x.labels.length;
    for (const t of trials) {
      const i = this.x.index(t.values[this.x.name]);
      const j = this.y.name ? this.y.index(t.values[this.y.name]) : 0;
      if (!(i >= 0 && i < nx && j >= 0 && j < this.y.labels.length)) continue;
      const v = metricOf(t, this.metric);
      const key = j * nx + i;
      const cell = this.cells.get(key);
      const usable = t.feasible && Number.isFinite(v);
      if (!cell) {
        this.cells.set(key, { trial: t, value: usable ? v : NaN, count: 1 });
      } else {
        cell.count += 1;
        if (usable && (!Number.isFinite(cell.value) || this.sign * v > this.sign * cell.value)) {
          cell.trial = t;
          cell.value = v;
        }
      }
      if (usable) {
        if (v < this.min) this.min = v;
        if (v > this.max) this.max = v;
      }
      this.dirty = true;
    }
  }

  draw() {
    if (!this.dirty || !this.canvas.parentElement || this.canvas.offsetParent === null) return false;
    this.dirty = false;
    const { ctx, width, height } = setup(this.canvas, this.height);
    const nx = this.x.labels.length;
    const ny = this.y.labels.length;
    const w = (width - PAD.left - PAD.right) / nx;
    const h = (height - PAD.top - PAD.bottom) / ny;
    this.geometry = { w, h, nx, ny };
    ctx.fillStyle = EMPTY.css;
    ctx.fillRect(PAD.left, PAD.top, w * nx, h * ny);
    const span = this.max - this.min;
    const colour = (cell) => {
      if (!Number.isFinite(cell.value)) return INFEASIBLE;
      let t = span > 0 ? (cell.value - this.min) / span : 0.5;
      if (this.sign < 0) t = 1 - t;
      return PALETTE[Math.round(Math.min(1, Math.max(0, t)) * 100)];
    };
    if (nx * ny > PIXEL_CELLS) {
      if (!this.image || this.image.width !== nx || this.image.height !== ny) {
        this.image = new OffscreenCanvas(nx, ny);
      }
      const ictx = this.image.getContext('2d');
      const img = ictx.createImageData(nx, ny);
      const px = img.data;
      for (let k = 0; k < nx * ny; k++) {
        px[k * 4] = EMPTY.rgb[0];
        px[k * 4 + 1] = EMPTY.rgb[1];
        px[k * 4 + 2] = EMPTY.rgb[2];
        px[k * 4 + 3] = 255;
      }
      for (const [key, cell] of this.cells) {
        const i = key % nx;
        const j = Math.floor(key / nx);
        const o = ((ny - 1 - j) * nx + i) * 4;
        const { rgb } = colour(cell);
        px[o] = rgb[0];
        px[o + 1] = rgb[1];
        px[o + 2] = rgb[2];
      }
      ictx.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.image, PAD.left, PAD.top, w * nx, h * ny);
    } else {
      // one fillStyle per colour, not per cell
      const groups = new Map();
      for (const [key, cell] of this.cells) {
        const c = colour(cell);
        if (!groups.has(c)) groups.set(c, []);
        groups.get(c).push(key);
      }
      for (const [c, keys] of groups) {
        ctx.fillStyle = c.css;
        for (const key of keys) {
          const i = key % nx;
          const j = Math.floor(key / nx);
          ctx.fillRect(PAD.left + i * w + 0.5, PAD.top + (ny - 1 - j) * h + 0.5, Math.max(1, w - 1), Math.max(1, h - 1));
        }
      }
    }
    // axes: labels where they fit
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const everyX = Math.max(1, Math.ceil(34 / w));
    for (let i = 0; i < nx; i += everyX) ctx.fillText(this.x.labels[i], PAD.left + (i + 0.5) * w, height - PAD.bottom + 4);
    ctx.fillText(this.x.name, PAD.left + (w * nx) / 2, height - 14);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const everyY = Math.max(1, Math.ceil(14 / h));
    for (let j = 0; j < ny; j += everyY) ctx.fillText(this.y.labels[j], PAD.left - 4, PAD.top + (ny - 1 - j + 0.5) * h);
    if (this.y.name) {
      ctx.save();
      ctx.translate(10, PAD.top + (h * ny) / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'center';
      ctx.fillText(this.y.name, 0, 0);
      ctx.restore();
    }
    this.canvas.dataset.cells = String(this.cells.size);
    const lo = Number.isFinite(this.min) ? fmtNum(this.sign > 0 ? this.min : this.max) : '—';
    const hi = Number.isFinite(this.max) ? fmtNum(this.sign > 0 ? this.max : this.min) : '—';
    this.legend.replaceChildren(`${this.label}: worst ${lo}`, Object.assign(document.createElement('span'), { className: 'heat-bar' }),
      `best ${hi}`);
    return true;
  }

  _hover(e) {
    const g = this.geometry;
    if (!g) return;
    const r = this.canvas.getBoundingClientRect();
    const i = Math.floor((e.clientX - r.left - PAD.left) / g.w);
    const j = g.ny - 1 - Math.floor((e.clientY - r.top - PAD.top) / g.h);
    const cell = i >= 0 && i < g.nx && j >= 0 && j < g.ny ? this.cells.get(j * g.nx + i) : null;
    if (!cell) {
      this.tooltip.hidden = true;
      return;
    }
    const t = cell.trial;
    const m = t.metrics || {};
    const lines = [
      this.names.map((n) => `${n} ${fmtAxis(t.values[n])}`).join(' · '),
      `${this.label} ${Number.isFinite(cell.value) ? fmtNum(cell.value) : '— (infeasible)'}`,
      `return ${fmtNum(m.total_return_pct)} % · sharpe ${fmtNum(m.sharpe)} · max DD ${fmtNum(m.max_drawdown_pct)} % · ${m.total_trades ?? 0} trades`,
      `trial #${t.number}${t.window ? ` (window ${t.window})` : ''}${cell.count > 1 ? ` · best of ${cell.count} trials in this cell` : ''}`,
    ];
    this.tooltip.replaceChildren(...lines.map((text) => Object.assign(document.createElement('div'), { textContent: text })));
    this.tooltip.hidden = false;
    const left = Math.min(e.clientX - r.left + 14, r.width - this.tooltip.offsetWidth - 4);
    this.tooltip.style.transform = `translate(${Math.max(0, left)}px, ${e.clientY - r.top + 14}px)`;
  }
}

// Two objectives: every feasible trial a dot, the front's members larger and joined.
export class Scatter {
  constructor(canvas, tooltip) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.height = 320;
    this.reset();
    canvas.addEventListener('mousemove', (e) => this._hover(e));
    canvas.addEventListener('mouseleave', () => { this.tooltip.hidden = true; });
  }

  reset() {
    this.points = [];
    this.front = new Set();
    this.labels = ['', ''];
    this.names = [];
    this.box = null;
    this.dirty = true;
    this.canvas.dataset.points = '0';
  }

  configure(labels, names) {
    this.labels = labels;
    this.names = names;
    this.dirty = true;
  }

  add(trials) {
    for (const t of trials) {
      const [a, b] = t.objectives;
      if (!t.feasible || !Number.isFinite(a) || !Number.isFinite(b)) continue;
      this.points.push(t);
      if (!this.box) this.box = { x0: a, x1: a, y0: b, y1: b };
      else {
        this.box.x0 = Math.min(this.box.x0, a);
        this.box.x1 = Math.max(this.box.x1, a);
        this.box.y0 = Math.min(this.box.y0, b);
        this.box.y1 = Math.max(this.box.y1, b);
      }
      this.dirty = true;
    }
  }

  setFront(front) {
    this.front = front;
    this.dirty = true;
  }

  _scale(width, height) {
    const b = this.box;
    const dx = b.x1 - b.x0 || 1;
    const dy = b.y1 - b.y0 || 1;
    const pw = width - PAD.left - PAD.right;
    const ph = height - PAD.top - PAD.bottom;
    return {
      x: (v) => PAD.left + ((v - b.x0) / dx) * pw,
      y: (v) => PAD.top + ph - ((v - b.y0) / dy) * ph,
    };
  }

  draw() {
    if (!this.dirty || this.canvas.offsetParent === null) return false;
    this.dirty = false;
    const { ctx, width, height } = setup(this.canvas, this.height);
    this.canvas.dataset.points = String(this.points.length);
    ctx.strokeStyle = color('--line');
    ctx.strokeRect(PAD.left, PAD.top, width - PAD.left - PAD.right, height - PAD.top - PAD.bottom);
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText(this.labels[0], PAD.left + (width - PAD.left - PAD.right) / 2, height - 14);
    ctx.save();
    ctx.translate(10, PAD.top + (height - PAD.top - PAD.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(this.labels[1], 0, 0);
    ctx.restore();
    if (!this.box) return true;
    const s = this._scale(width, height);
    this.scale = s;
    ctx.textBaseline = 'top';
    ctx.fillText(fmtNum(this.box.x0), PAD.left, height - PAD.bottom + 4);
    ctx.fillText(fmtNum(this.box.x1), width - PAD.right - 10, height - PAD.bottom + 4);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText(fmtNum(this.box.y1), PAD.left - 4, PAD.top + 4);
    ctx.fillText(fmtNum(this.box.y0), PAD.left - 4, height - PAD.bottom - 4);
    ctx.fillStyle = 'rgba(125, 138, 154, 0.55)';
    const front = [];
    for (const t of this.points) {
      if (this.front.has(`${t.window}:${t.number}`)) front.push(t);
      else ctx.fillRect(s.x(t.objectives[0]) - 1.5, s.y(t.objectives[1]) - 1.5, 3, 3);
    }
    front.sort((a, b) => a.objectives[0] - b.objectives[0]);
    ctx.strokeStyle = color('--accent');
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    front.forEach((t, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, s.x(t.objectives[0]), s.y(t.objectives[1])));
    ctx.stroke();
    ctx.fillStyle = color('--accent');
    for (const t of front) {
      ctx.beginPath();
      ctx.arc(s.x(t.objectives[0]), s.y(t.objectives[1]), 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    this.canvas.dataset.front = String(front.length);
    return true;
  }

  _hover(e) {
    if (!this.scale || !this.points.length) return;
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best = null;
    let dist = 64; // px², within 8 px
    for (const t of this.points) {
      const dx = this.scale.x(t.objectives[0]) - mx;
      const dy = this.scale.y(t.objectives[1]) - my;
      const d = dx * dx + dy * dy;
      if (d < dist) {
        dist = d;
        best = t;
      }
    }
    if (!best) {
      this.tooltip.hidden = true;
      return;
    }
    const lines = [
      this.names.map((n) => `${n} ${fmtAxis(best.values[n])}`).join(' · '),
      `${this.labels[0]} ${fmtNum(best.objectives[0])} · ${this.labels[1]} ${fmtNum(best.objectives[1])}`,
      `trial #${best.number}${this.front.has(`${best.window}:${best.number}`) ? ' · on the front' : ''}`,
    ];
    this.tooltip.replaceChildren(...lines.map((text) => Object.assign(document.createElement('div'), { textContent: text })));
    this.tooltip.hidden = false;
    this.tooltip.style.transform = `translate(${Math.min(mx + 14, r.width - this.tooltip.offsetWidth - 4)}px, ${my + 14}px)`;
  }
}
