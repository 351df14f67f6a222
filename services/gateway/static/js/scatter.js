// Closed trades as points: P&L against the trade's duration, or against its entry time of day,
// coloured by side or by exit reason. A decade's run has ~50,000 trades: the points come from
// typed arrays (the columns analytics-data.js makes) and are written as pixels into one image
// (a 3-pixel square each, the commonest colour first so that rare ones stay on top), put on the
// canvas with one drawImage; 50,000 fillRects took ~40-100 ms of software canvas. The point
// under the pointer is found through a grid of 12-pixel cells. Drawing stays within a few
// milliseconds, hovering well under one.

import { dateOf, fmtNum, fmtSigned, timeOfDay } from './dom.js';
import { color, extent, fmtTick, niceTicks, PAD, PALETTE, Plot, setup } from './plot.js';

const SIDE_COLOURS = { long: '#4aa3ff', short: '#f0b232', options: '#c58af9' };
const CELL = 12;   // px, the hover grid's cells
const REACH = 64;  // px², the nearest point within 8 px

export const MODES = {
  duration: { label: 'duration (minutes)', x: (t, i) => t.duration_minutes[i] },
  hour: { label: 'entry time (hour of day)', x: (t, i) => t.entry_minute_of_day[i] / 60 },
};

export const fmtMinutes = (m) => (m >= 1440 ? `${fmtNum(m / 1440)} d` : m >= 90 ? `${fmtNum(m / 60)} h` : `${fmtNum(m)} min`);

export class TradeScatter extends Plot {
  /** @param {(i: number) => void} onPick a point clicked: its trade's index */
  constructor(canvas, tooltip, onPick, { height = 300 } = {}) {
    super(canvas, tooltip, height);
    this.onPick = onPick;
    this.trades = null;
    this.mode = 'duration';
    this.colorBy = 'side';
    this.index = null;   // the hover grid (gridIndex) of the points drawn
    this.drawn = null;   // {px, py, width, height}: the points drawn, in CSS pixels
    this.legendCache = null;
    canvas.dataset.points = '0';
    canvas.addEventListener('click', (e) => {
      const i = this._nearest(e);
      if (i >= 0) this.onPick(i);
    });
  }

  // `trades`: the columns of analytics-data.js.
  set(trades) {
    this.trades = trades;
    this.legendCache = null;
    this.draw();
  }

  configure({ mode = this.mode, colorBy = this.colorBy }) {
    if (colorBy !== this.colorBy) this.legendCache = null;
    this.mode = mode;
    this.colorBy = colorBy;
    this.draw();
  }

  // The categories of the colouring: [{label, color, count}], most points first.
  legend() {
    const t = this.trades;
    if (!t) return [];
    if (this.legendCache) return this.legendCache;
    const cat = t.categories[this.colorBy];
    const counts = new Array(cat.values.length).fill(0);
    for (let i = 0; i < t.n; i++) counts[cat.codes[i]]++;
    this.legendCache = cat.values.map((label, k) => ({ k, label: label || '(none)', color: this._colour(label, k), count: counts[k] }))
      .filter((c) => c.count > 0).sort((a, b) => b.count - a.count);
    return this.legendCache;
  }

  _colour(label, k) {
    return this.colorBy === 'side' && SIDE_COLOURS[label] ? SIDE_COLOURS[label] : PALETTE[k % PALETTE.length];
  }

  draw() {
    const s = setup(this.canvas, this.height);
    if (!s) return false;
    const { ctx, width, height } = s;
    const t = this.trades;
    const n = t ? t.n : 0;
    const mode = MODES[this.mode];
    const xs = new Float64Array(n);
    for (let i = 0; i < n; i++) xs[i] = mode.x(t, i);
    const [x0, x1] = this.mode === 'hour' ? hourRange(xs) : extent([xs], [0]);
    const [y0, y1] = extent([t ? t.pnl : []], [0]);
    const pw = width - PAD.left - PAD.right;
    const ph = height - PAD.top - PAD.bottom;
    const x = (v) => PAD.left + ((v - x0) / (x1 - x0)) * pw;
    const y = (v) => PAD.top + ph - ((v - y0) / (y1 - y0)) * ph;
    this._axes(ctx, width, height, niceTicks(y0, y1, Math.max(2, Math.round(ph / 40))), y, 'P&L');
    ctx.fillStyle = color('--muted');
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const xt = this.mode === 'hour' ? hourTicks(x0, x1) : niceTicks(x0, x1, Math.max(2, Math.round(pw / 70)));
    for (const v of xt) ctx.fillText(this.mode === 'hour' ? `${String(v).padStart(2, '0')}:00` : fmtTick(v), x(v), height - PAD.bottom + 5);
    ctx.textAlign = 'right';
    ctx.fillText(mode.label, width - PAD.right - 4, PAD.top + 4);
    if (y0 < 0 && y1 > 0) {
      ctx.strokeStyle = color('--muted');
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(PAD.left, Math.round(y(0)) + 0.5);
      ctx.lineTo(PAD.left + pw, Math.round(y(0)) + 0.5);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // Points in CSS pixels (rounded); the image in device pixels.
    const px = new Int32Array(n);
    const py = new Int32Array(n);
    let shown = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(xs[i]) && Number.isFinite(t.pnl[i])) {
        px[i] = Math.round(x(xs[i]));
        py[i] = Math.round(y(t.pnl[i]));
        shown++;
      } else px[i] = py[i] = -1;
    }
    if (shown) this._points(ctx, px, py);
    this.drawn = { px, py, width, height };
    this.index = null; // built at the first hover
    this.canvas.dataset.points = String(shown);
    this.canvas.dataset.mode = this.mode;
    this.canvas.dataset.colorBy = this.colorBy;
    return true;
  }

  // Each point a (2r + 1)-pixel square of its category's colour, into one image: rank by rank,
  // the commonest category first.
  _points(ctx, px, py) {
    const { width: W, height: H } = this.canvas;
    const dpr = W / Math.max(1, this.canvas.parentElement.clientWidth);
    if (!this.image || this.image.width !== W || this.image.height !== H) {
      this.image = new ImageData(W, H);
      this.layer = new OffscreenCanvas(W, H);
    } else this.image.data.fill(0);
    const pixels = new Uint32Array(this.image.data.buffer);
    const codes = this.trades.categories[this.colorBy].codes;
    const r = Math.max(1, Math.round(1.25 * dpr));
    for (const c of this.legend()) {
      const rgba = packed(c.color);
      for (let i = 0; i < px.length; i++) {
        if (codes[i] !== c.k || px[i] < 0) continue;
        const cx = Math.round(px[i] * dpr);
        const cy = Math.round(py[i] * dpr);
        for (let yy = Math.max(0, cy - r); yy <= Math.min(H - 1, cy + r); yy++) {
          const row = yy * W;
          for (let xx = Math.max(0, cx - r); xx <= Math.min(W - 1, cx + r); xx++) pixels[row + xx] = rgba;
        }
      }
    }
    this.layer.getContext('2d').putImageData(this.image, 0, 0);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 0.8;
    ctx.drawImage(this.layer, 0, 0);
    ctx.restore();
  }

  _nearest(e) {
    if (!this.index && this.drawn) {
      const { px, py, width, height } = this.drawn;
      this.index = gridIndex(px, py, width, height);
    }
    const g = this.index;
    if (!g) return -1;
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    const cx = Math.floor(mx / CELL);
    const cy = Math.floor(my / CELL);
    let best = -1;
    let dist = REACH;
    for (let j = cy - 1; j <= cy + 1; j++) {
      for (let i = cx - 1; i <= cx + 1; i++) {
        if (i < 0 || j < 0 || i >= g.cols || j >= g.rows) continue;
        const cell = j * g.cols + i;
        for (let k = g.start[cell]; k < g.start[cell + 1]; k++) {
          const p = g.order[k];
          const dx = g.px[p] - mx;
          const dy = g.py[p] - my;
          const d = dx * dx + dy * dy;
          if (d < dist) {
            dist = d;
            best = p;
          }
        }
      }
    }
    return best;
  }

  _hover(e) {
    const i = this._nearest(e);
    this.canvas.style.cursor = i >= 0 ? 'pointer' : '';
    if (i < 0) {
      this._leave();
      return;
    }
    const t = this.trades;
    const r = this.canvas.getBoundingClientRect();
    const entry = t.entry_time[i];
    const exit = t.exit_time[i];
    this._tip([
      `${t.trade_id[i]} · ${t.categories.side.values[t.categories.side.codes[i]]}`,
      `${dateOf(entry)} ${timeOfDay(entry)} → ${dateOf(exit) === dateOf(entry) ? '' : `${dateOf(exit)} `}${timeOfDay(exit)} (${fmtMinutes(t.duration_minutes[i])})`,
      `P&L ${fmtSigned(t.pnl[i])} (${fmtNum(t.return_pct[i])} %)`,
      `exit: ${t.categories.exit_reason.values[t.categories.exit_reason.codes[i]] || '—'} · node ${t.categories.node_id.values[t.categories.node_id.codes[i]] || '—'}`,
      'click: open its day',
    ], e.clientX - r.left, e.clientY - r.top);
  }
}

// '#rrggbb' as one pixel of a Uint32Array over RGBA bytes (little-endian: A B G R).
function packed(hex) {
  const v = parseInt(hex.slice(1), 16);
  return ((255 << 24) | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
}

function hourRange(xs) {
  let lo = 24;
  let hi = 0;
  for (const v of xs) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return [9, 16];
  return [Math.max(0, Math.floor(lo) - 0.25), Math.min(24, Math.ceil(hi + 1e-9) + 0.25)];
}

function hourTicks(a, b) {
  const out = [];
  for (let h = Math.ceil(a); h <= b; h++) out.push(h);
  return out;
}

// Points bucketed by CELL-pixel cells (a counting sort): cell c's points are
// order[start[c] … start[c + 1]).
function gridIndex(px, py, width, height) {
  const cols = Math.ceil(width / CELL) + 1;
  const rows = Math.ceil(height / CELL) + 1;
  const start = new Int32Array(cols * rows + 1);
  const n = px.length;
  const cellOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (px[i] < 0) {
      cellOf[i] = -1;
      continue;
    }
    const c = Math.min(rows - 1, Math.floor(py[i] / CELL)) * cols + Math.min(cols - 1, Math.floor(px[i] / CELL));
    cellOf[i] = c;
    start[c + 1]++;
  }
  for (let c = 0; c < cols * rows; c++) start[c + 1] += start[c];
  const fill = start.slice(0, cols * rows);
  const order = new Int32Array(start[cols * rows]);
  for (let i = 0; i < n; i++) if (cellOf[i] >= 0) order[fill[cellOf[i]]++] = i;
  return { cols, rows, start, order, px, py };
}
