// Equity, drawdown and daily P&L charts on TradingView's lightweight-charts (a classic script
// served from node_modules, global `LightweightCharts`). Without it each chart says why it is
// empty and the rest of the page works.

import { el } from './dom.js';

const LWC = globalThis.LightweightCharts;
export const chartsAvailable = !!LWC?.createChart;
export const MISSING_MESSAGE = 'Charts need the npm package lightweight-charts: run `make setup` '
  + '(it installs it into node_modules/), then reload.';

const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue(name).trim();

function baseOptions() {
  return {
    autoSize: true,
    layout: { background: { type: 'solid', color: color('--panel') }, textColor: color('--muted'), fontSize: 11 },
    grid: { vertLines: { color: '#1a2230' }, horzLines: { color: '#1a2230' } },
    rightPriceScale: { borderColor: color('--line') },
    // minBarSpacing: fitContent() must fit years of per-trade points into a few hundred pixels.
    timeScale: { borderColor: color('--line'), timeVisible: true, secondsVisible: false, minBarSpacing: 0.001,
      enableConflation: true },
    crosshair: { mode: 1 },
  };
}

class Placeholder {
  constructor(container) {
    container.replaceChildren(el('div', { class: 'no-chart', text: MISSING_MESSAGE }));
  }

  reset() {}

  append() {}

  get pending() { return 0; }

  get complete() { return true; }

  draw() { return false; }

  fit() {}
}

// How a series takes in a run that streams in (tens of thousands of points):
//
// * While the run is live the series holds a thinned view: every `stride`-th point, the stride
//   doubling whenever that would be more than 2 × LIVE_POINTS, so the view stays at most a
//   thousand points, as many as the chart has pixels across. It is replaced with one setData
//   (~1 ms at that size) when new points join it, at most every LIVE_DRAW_MS. series.update is
//   not cheaper: each call re-derives the series and the time scale, ~1.5 ms a point even at
//   that size, and in proportion to the points held beyond (O(n²) for a run fed point by point).
// * Once the run is over the series gets every point, with one setData (~100 ms for 50,000).
// * Drawing is cheap whatever the count: the time scale conflates points that share a pixel
//   (lightweight-charts' enableConflation), so a decade of per-trade points draws as ~1,000.
//   Without it a 50,000-point line cost ~140 ms of canvas work per redraw.
const LIVE_POINTS = 500;
const LIVE_DRAW_MS = 400;

class Chart {
  constructor(container, kind, options) {
    container.replaceChildren();
    this.chart = LWC.createChart(container, baseOptions());
    this.series = this.chart.addSeries(LWC[kind], options);
    this.reset(false);
  }

  reset(clear = true) {
    this.data = [];     // every point, in time order
    this.next = 0;      // data[0, next) have been considered for the series
    this.stride = 1;    // the series holds data[i] for i < next and i % stride == 0
    this.held = 0;      // how many points the series holds
    if (clear) this.series.setData([]);
  }

  // Points must come in increasing time order (RunState guarantees it).
  append(points) {
    for (const p of points) this.data.push(p);
  }

  get pending() {
    return this.data.length - this.next;
  }

  // The series holds every point.
  get complete() {
    return this.stride === 1 && this.next === this.data.length;
  }

  // Bring the series up to date: every point with `all` (the run is over), else the thinned
  // view. True when the series changed.
  draw(all = false) {
    const n = this.data.length;
    if (all) {
      if (this.complete) return false;
      this.series.setData(this.data);
      this.next = this.held = n;
      this.stride = 1;
      return true;
    }
    if (this.next === n) return false;
    let stride = this.stride;
    while (Math.ceil(n / stride) > 2 * LIVE_POINTS) stride *= 2;
    const held = Math.ceil(n / stride);
    this.next = n;
    if (stride === this.stride && held === this.held) return false; // none of the new points is on the stride
    this.stride = stride;
    this.held = held;
    const view = [];
    for (let i = 0; i < n; i += stride) view.push(this.data[i]);
    this.series.setData(view);
    return true;
  }

  fit() {
    this.chart.timeScale().fitContent();
  }
}

export class Charts {
  constructor({ equity, drawdown, daily }) {
    const make = (node, kind, options) => (chartsAvailable ? new Chart(node, kind, options) : new Placeholder(node));
    const whole = { type: 'price', precision: 0, minMove: 1 };
    this.equity = make(equity, 'LineSeries', { color: color('--accent'), lineWidth: 2, priceLineVisible: false, priceFormat: whole });
    this.drawdown = make(drawdown, 'AreaSeries', {
      lineColor: color('--down'), topColor: 'rgba(229, 72, 77, 0.05)', bottomColor: 'rgba(229, 72, 77, 0.45)',
      lineWidth: 1, priceLineVisible: false, invertFilledArea: true,
      priceFormat: { type: 'custom', formatter: (v) => `${v.toFixed(2)} %` },
    });
    this.daily = make(daily, 'HistogramSeries', { priceLineVisible: false, base: 0, priceFormat: whole });
    this.up = color('--up');
    this.down = color('--down');
    this.lastDraw = 0;
  }

  reset() {
    this.equity.reset();
    this.drawdown.reset();
    this.daily.reset();
    this.lastDraw = 0;
  }

  // One frame's new points: equity [{time, value, dd}], daily [{time: 'YYYY-MM-DD', value}].
  append(equity, daily) {
    if (equity.length) {
      this.equity.append(equity.map((p) => ({ time: p.time, value: p.value })));
      this.drawdown.append(equity.map((p) => ({ time: p.time, value: p.dd })));
    }
    if (daily.length) {
      this.daily.append(daily.map((p) => ({ ...p, color: p.value >= 0 ? this.up : this.down })));
    }
  }

  // Draw what is pending: while the run streams in, a thinned view at most every LIVE_DRAW_MS,
  // fitted to the whole run; once it is over (`final`), every point, one chart a call (each is a
  // setData of the whole series, ~100 ms for 50,000 points: three at once made the page's longest
  // stall). True when nothing waits.
  draw(final = false) {
    const all = [this.equity, this.drawdown, this.daily];
    if (final) {
      const next = all.find((c) => !c.complete);
      if (!next) return true;
      next.draw(true);
      next.fit();
      return all.every((c) => c.complete);
    }
    if (!all.some((c) => c.pending)) return true;
    const now = performance.now();
    if (now - this.lastDraw < LIVE_DRAW_MS) return false;
    this.lastDraw = now;
    const changed = all.map((c) => c.draw()).some(Boolean);
    if (changed) this.fit(); // while a run streams in, show all of it
    return true;
  }

  fit() {
    this.equity.fit();
    this.drawdown.fit();
    this.daily.fit();
  }
}
