// The trades table: rows are appended in one fragment per frame; a click selects a trade.
//
// A table re-lays out all its rows when rows are added, so appending every frame costs more as
// it grows (a 6,000-trade run spent half its time there). So queued rows are appended at most
// every rows/10 ms (capped at a second): every frame while the table is small, a few times a
// second once it holds thousands of trades, which keeps the total layout work linear.

import { dateOf, el, fmtInt, fmtMoney, fmtNum, fmtSigned, signClass, timeOfDay } from './dom.js';

const MS_PER_ROW = 0.1;
const MAX_APPEND_EVERY_MS = 1000;

export class TradesTable {
  constructor(body, count, filterLabel, onSelect) {
    this.body = body;
    this.count = count;
    this.filterLabel = filterLabel;
    this.onSelect = onSelect;
    this.rows = new Map();   // trade id → tr
    this.trades = new Map(); // trade id → trade
    this.selected = null;
    this.filter = null;      // a date, or null for all
    this.pending = [];       // trades queued for the next append
    this.lastAppend = 0;
    body.addEventListener('click', (e) => {
      const tr = e.target.closest('tr');
      if (tr) this.onSelect(this.trades.get(tr.dataset.tradeId));
    });
    body.addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr');
      if (tr && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.onSelect(this.trades.get(tr.dataset.tradeId));
      }
    });
  }

  reset() {
    this.pending = [];
    this.body.replaceChildren();
    this.rows.clear();
    this.trades.clear();
    this.selected = null;
    this.setFilter(null);
    this.count.textContent = '0';
  }

  queue(trades) {
    for (const t of trades) this.pending.push(t);
  }

  // How long after the last append the next may come, for the table's current size.
  get appendEveryMs() {
    return Math.min(MAX_APPEND_EVERY_MS, this.rows.size * MS_PER_ROW);
  }

  // Append the queued trades if it is time (always with `force`); true when none is left queued.
  flush(force = false) {
    if (!this.pending.length) return true;
    const now = performance.now();
    if (!force && now - this.lastAppend < this.appendEveryMs) return false;
    const trades = this.pending;
    this.pending = [];
    this.lastAppend = now;
    this.append(trades);
    return true;
  }

  append(trades) {
    if (!trades.length) return;
    const frag = document.createDocumentFragment();
    for (const t of trades) {
      if (this.rows.has(t.trade_id)) continue;
      const tr = this._row(t);
      this.rows.set(t.trade_id, tr);
      this.trades.set(t.trade_id, t);
      frag.append(tr);
    }
    this.body.append(frag);
    this.count.textContent = fmtInt(this.rows.size);
  }

  select(trade) {
    if (this.selected) this.rows.get(this.selected)?.setAttribute('aria-selected', 'false');
    this.selected = trade ? trade.trade_id : null;
    if (trade) this.rows.get(trade.trade_id)?.setAttribute('aria-selected', 'true');
  }

  // Show only the trades that closed on `date` (null: all).
  setFilter(date) {
    this.filter = date;
    for (const tr of this.rows.values()) tr.hidden = !!date && tr.dataset.date !== date;
    this.filterLabel.hidden = !date;
    this.filterLabel.textContent = date ? `closed on ${date}` : '';
  }

  _row(t) {
    const date = dateOf(t.exit_time || t.entry_time);
    const tr = el('tr', { tabindex: '0', 'aria-selected': 'false',
      dataset: { tradeId: t.trade_id, date, testid: 'trade-row' } },
    el('td', { class: 'num', text: t.n }),
    el('td', { text: date }),
    el('td', { class: 'mono', text: t.trade_id }),
    el('td', { class: t.side === 'buy' ? 'up' : 'down', text: t.side }),
    el('td', { class: 'num', text: fmtNum(t.quantity) }),
    el('td', { text: dateOf(t.entry_time) === date ? timeOfDay(t.entry_time) : `${dateOf(t.entry_time)} ${timeOfDay(t.entry_time)}` }),
    el('td', { class: 'num', text: fmtMoney(t.entry_price) }),
    el('td', { text: timeOfDay(t.exit_time) }),
    el('td', { class: 'num', text: fmtMoney(t.exit_price) }),
    el('td', { class: `num ${signClass(t.pnl)}`, text: fmtSigned(t.pnl) }),
    el('td', { class: `num ${signClass(t.pnl_percent)}`, text: t.pnl_percent ?? '' }),
    el('td', { text: t.exit_reason || '' }));
    if (this.filter && date !== this.filter) tr.hidden = true;
    return tr;
  }
}
