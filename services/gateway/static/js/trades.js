// The trades table: rows are appended once per frame in one fragment; a click selects a trade.

import { dateOf, el, fmtInt, fmtMoney, fmtNum, fmtSigned, signClass, timeOfDay } from './dom.js';

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
    this.body.replaceChildren();
    this.rows.clear();
    this.trades.clear();
    this.selected = null;
    this.setFilter(null);
    this.count.textContent = '0';
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
