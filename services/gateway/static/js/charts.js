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
    timeScale: { borderColor: color('--line'), timeVisible: true, secondsVisible: false, minBarSpacing: 0.001 },
    crosshair: { mode: 1 },
  };
}

class Placeholder {
  constructor(container) {
    container.replaceChildren(el('div', { class: 'no-chart', text: MISSING_MESSAGE }));
  }

  reset() {}

  append() {}

  draw() { return true; }

  fit() {}
}

// A few points go in one by one (series.update); more are drawn with one setData of the whole
// series, at most every FULL_DRAW_MS_PER_POINT ms per point held (capped), because series.update
// per point cost over half the page's time on a 20,000-trade run.
const FEW_POINTS = 16;
const FULL_DRAW_MS_PER_POINT = 0.05;
const MAX_FULL_DRAW_EVERY_MS = 1000;

class Chart {
  constructor(container, kind, options) {
    container.replaceChildren();
    this.chart = LWC.createChart(container, baseOptions());
    this.series = this.chart.addSeries(LWC[kind], options);
    this.data = [];
    this.pending = 0;   // points in `data` not drawn yet
    this.lastFull = 0;  // when setData last ran
  }

  reset() {
    this.data = [];
    this.pending = 0;
    this.series.setData([]);
  }

  // Points must come in increasing time order (RunState guarantees it).
  append(points) {
    for (const p of points) this.data.push(p);
    this.pending += points.length;
  }

  // Draw what is pending if it is time (always with `force`); true when nothing is left pending.
  draw(force = false) {
    if (!this.pending) return true;
    if (this.pending <= FEW_POINTS) {
      for (let i = this.data.length - this.pending; i < this.data.length; i += 1) this.series.update(this.data[i]);
    } else {
      const now = performance.now();
      const every = Math.min(MAX_FULL_DRAW_EVERY_MS, this.data.length * FULL_DRAW_MS_PER_POINT);
      if (!force && now - this.lastFull < every) return false;
      this.series.setData(this.data);
      this.lastFull = now;
    }
    this.pending = 0;
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
  }

  reset() {
    this.equity.reset();
    this.drawdown.reset();
    this.daily.reset();
  }

  // One frame's new points: equity [{time, value, dd}], daily [{time: 'YYYY-MM-DD', value}].
  // Returns true when all of them are drawn; false when some wait for a later draw().
  append(equity, daily, force = false) {
    if (equity.length) {
      this.equity.append(equity.map((p) => ({ time: p.time, value: p.value })));
      this.drawdown.append(equity.map((p) => ({ time: p.time, value: p.dd })));
    }
    if (daily.length) {
      this.daily.append(daily.map((p) => ({ ...p, color: p.value >= 0 ? this.up : this.down })));
    }
    return this.draw(force);
  }

  draw(force = false) {
    const a = this.equity.draw(force);
    const b = this.drawdown.draw(force);
    const c = this.daily.draw(force);
    return a && b && c;
  }

  fit() {
    this.equity.fit();
    this.drawdown.fit();
    this.daily.fit();
  }

  // While a run streams in, show all of it (at most a few times a second); afterwards the
  // person zooms and scrolls freely.
  follow() {
    const now = performance.now();
    if (now - (this.lastFit || 0) < 250) return;
    this.lastFit = now;
    this.fit();
  }
}
