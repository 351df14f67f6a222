// One backtest as the page knows it, built from its events. No DOM here: the views read this
// state and the changes collected since their last frame (`drain()`).

import { wallSeconds } from './dom.js';

export class RunState {
  constructor(id) {
    this.id = id;
    this.config = null;          // BacktestConfig
    this.status = 'QUEUED';      // QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED
    this.totalDays = 0;
    this.completedDays = 0;
    this.currentDate = '';
    this.days = new Map();       // date → {date, status: 'running'|'done', pnl, trades, wins, losses, equity}
    this.trades = [];            // in event order
    this.tradeIds = new Set();
    this.positions = new Map();  // option position id → {position_id, legs: [trade], summary: PositionSummary|null}
    // ids → Promise<Map<id, NodeEvent>>: the node events the stream brought (diagnostics fall
    // back on these); set by whoever reads the stream, which keeps them (js/stream.js).
    this.nodeEventSource = null;
    this.equity = [];            // [{time, value}] wall-clock seconds, strictly increasing
    this.peak = -Infinity;
    this.worstDrawdown = undefined; // the lowest `dd` of `equity` (%)
    this.wins = 0;               // trades with a positive P&L
    this.summary = null;         // the latest PnlSummary
    this.overall = null;         // OverallSummary, at the end
    this.metrics = null;         // Metrics, at the end
    this.tick = null;            // the latest TickUpdate
    this.message = '';
    this.firstEventAt = 0;       // performance.now() of the first event this page received
    this.terminal = null;        // {emitted_at, received}: the terminal event's stamp, and when its batch reached the page (epoch ms)
    this._fresh();
  }

  _fresh() {
    this.changes = { trades: [], days: new Set(), equity: [], daily: [], any: false };
  }

  drain() {
    const c = this.changes;
    this._fresh();
    return c;
  }

  get initialCapital() {
    const c = this.config;
    return Number(c?.initial_capital || c?.strategy?.execution?.initial_capital || 0);
  }

  // `ev`: the event, parsed (BacktestEvent JSON); `kind`: its set oneof field.
  apply(kind, ev) {
    if (!this.firstEventAt) this.firstEventAt = performance.now();
    this.changes.any = true;
    if (kind === 'backtest_completed' || kind === 'backtest_failed' || kind === 'backtest_cancelled') {
      this.terminal = { emitted_at: ev.emitted_at || '', received: ev.received_at || performance.timeOrigin + performance.now() };
    }
    if (kind === 'tick_update') {
      this.tick = ev.tick_update || null;
      return;
    }
    const body = ev[kind] || {};
    switch (kind) {
      case 'backtest_started':
        this.status = 'RUNNING';
        this.config = body.config || this.config;
        this.totalDays = body.total_days || this.totalDays;
        break;
      case 'day_started':
        this.status = 'RUNNING';
        this.totalDays = body.total_days || this.totalDays;
        this.currentDate = body.date;
        if (!this.equity.length && this.initialCapital) {
          const open = this.config?.strategy?.session?.open_time || '00:00';
          this._equity(wallSeconds(`${body.date}T${open}:00`), this.initialCapital);
        }
        this._day(body.date, { status: 'running' });
        break;
      case 'trade_update': {
        const t = body.trade || {};
        if (this.tradeIds.has(t.trade_id)) break; // trade ids are unique per backtest
        this.tradeIds.add(t.trade_id);
        t.n = this.trades.length + 1;
        this.trades.push(t);
        this.changes.trades.push(t);
        if (Number(t.pnl) > 0) this.wins += 1;
        if (t.leg_id) this._position(t.position_id).legs.push(t);
        this.summary = body.summary || this.summary;
        if (t.exit_time && body.summary?.equity) this._equity(wallSeconds(t.exit_time), Number(body.summary.equity));
        break;
      }
      case 'day_completed': {
        const s = body.summary || {};
        this.completedDays = Math.max(this.completedDays, body.day_number || 0);
        this.totalDays = body.total_days || this.totalDays;
        this._day(body.date, {
          status: 'done', pnl: Number(s.total_pnl || 0), trades: s.total_trades || 0,
          wins: s.winning_trades || 0, losses: s.losing_trades || 0, equity: Number(body.equity),
          hasData: !!body.has_detail_data,
        });
        this.changes.daily.push({ time: body.date, value: Number(s.total_pnl || 0) });
        for (const p of body.positions || []) this._position(p.position_id).summary = p;
        if (body.equity) {
          const close = this.config?.strategy?.session?.close_time || '23:59';
          this._equity(wallSeconds(`${body.date}T${close}:00`), Number(body.equity));
        }
        break;
      }
      case 'backtest_completed':
        this.status = 'COMPLETED';
        this.overall = body.overall_summary || null;
        this.metrics = body.metrics || null;
        this.completedDays = this.totalDays || this.completedDays;
        break;
      case 'backtest_failed':
        this.status = 'FAILED';
        this.message = `Failed${body.date ? ` on ${body.date}` : ''}: ${body.error_code || ''} ${body.error_message || ''}`.trim();
        break;
      case 'backtest_cancelled':
        this.status = 'CANCELLED';
        this.message = `Cancelled${body.reason ? `: ${body.reason}` : ''}${body.last_completed_date ? ` (last day completed: ${body.last_completed_date})` : ''}`;
        break;
      default:
        break;
    }
  }

  // From GET /backtests/{id}, when the stream cannot tell (a run that ended while we were away).
  applyFinal(bt) {
    this.status = String(bt.status || '').replace('BACKTEST_STATUS_', '');
    this.overall = bt.summary || this.overall;
    this.metrics = bt.metrics || this.metrics;
    if (bt.error_message) this.message = bt.error_message;
    this.changes.any = true;
  }

  async findNodeEvents(ids) {
    return this.nodeEventSource && ids.length ? this.nodeEventSource(ids) : new Map();
  }

  get finished() {
    return this.status === 'COMPLETED' || this.status === 'FAILED' || this.status === 'CANCELLED';
  }

  _day(date, fields) {
    const day = this.days.get(date) || { date, status: 'running', pnl: 0, trades: 0 };
    Object.assign(day, fields);
    this.days.set(date, day);
    this.changes.days.add(date);
  }

  _position(id) {
    if (!this.positions.has(id)) this.positions.set(id, { position_id: id, legs: [], summary: null });
    return this.positions.get(id);
  }

  // Charts need strictly increasing times: a point at the same second moves one second on.
  _equity(time, value) {
    if (!Number.isFinite(value)) return;
    const last = this.equity[this.equity.length - 1];
    const t = last && time <= last.time ? last.time + 1 : time;
    this.peak = Math.max(this.peak, value);
    const point = { time: t, value, dd: this.peak > 0 ? (value / this.peak - 1) * 100 : 0 };
    if (this.worstDrawdown === undefined || point.dd < this.worstDrawdown) this.worstDrawdown = point.dd;
    this.equity.push(point);
    this.changes.equity.push(point);
  }
}
