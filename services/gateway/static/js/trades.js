// The trades table, windowed: only the rows in (or near) the scroll viewport are in the DOM.
//
// A run can have tens of thousands of trades. A table re-lays out all its rows whenever rows
// are added, so a table holding every trade slowed a 50,000-trade run to minutes and froze the
// page for seconds at a time. Here the trades live in an array; the DOM holds a spacer row, the
// rows that can be seen (plus a margin), and a spacer row, re-drawn on scroll and on new trades.
// A click (or Enter) on a row selects its trade.

import { dateOf, el, fmtInt, fmtMoney, fmtNum, fmtSigned, signClass, timeOfDay } from './dom.js';

const COLUMNS = 12;
const OVERSCAN = 12; // rows drawn beyond each edge of the viewport
const DEFAULT_ROW_PX = 23; // until a real row has been measured

export class TradesTable {
  constructor(body, count, filterLabel, onSelect) {
    this.body = body;
    this.scroller = body.closest('.table-wrap') || body.parentElement;
    this.count = count;
    this.filterLabel = filterLabel;
    this.onSelect = onSelect;
    this.all = [];           // every trade, in arrival order
    this.byId = new Map();   // trade id → trade
    this.view = this.all;    // the trades shown: `all`, or those closed on `filter`
    this.selected = null;    // trade id
    this.filter = null;      // a date, or null for all
    this.rowPx = 0;          // measured height of one row
    this.drawn = '';         // the window last drawn (skip identical redraws)
    this.frame = 0;
    this.scroller.addEventListener('scroll', () => this._schedule(), { passive: true });
    window.addEventListener('resize', () => this._schedule());
    body.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-trade-id]');
      if (tr) this.onSelect(this.byId.get(tr.dataset.tradeId));
    });
    body.addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr[data-trade-id]');
      if (tr && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.onSelect(this.byId.get(tr.dataset.tradeId));
      }
    });
  }

  // Trade ids in table order (all of them, not only the drawn rows).
  ids() {
    return this.view.map((t) => t.trade_id);
  }

  reset() {
    this.all = [];
    this.byId.clear();
    this.view = this.all;
    this.selected = null;
    this.filter = null;
    this.filterLabel.hidden = true;
    this.filterLabel.textContent = '';
    this.count.textContent = '0';
    this.scroller.scrollTop = 0;
    this._draw(true);
  }

  append(trades) {
    let added = 0;
    for (const t of trades) {
      if (this.byId.has(t.trade_id)) continue;
      this.byId.set(t.trade_id, t);
      this.all.push(t);
      if (this.view !== this.all && this._matches(t)) this.view.push(t);
      added += 1;
    }
    if (!added) return;
    this.count.textContent = fmtInt(this.all.length);
    this._draw();
  }

  select(trade) {
    this.selected = trade ? trade.trade_id : null;
    for (const tr of this.body.querySelectorAll('tr[data-trade-id]')) {
      tr.setAttribute('aria-selected', String(tr.dataset.tradeId === this.selected));
    }
  }

  // Show only the trades that closed on `date` (null: all).
  setFilter(date) {
    this.filter = date;
    this.view = date ? this.all.filter((t) => this._matches(t)) : this.all;
    this.filterLabel.hidden = !date;
    this.filterLabel.textContent = date ? `closed on ${date}` : '';
    this.scroller.scrollTop = 0;
    this._draw(true);
  }

  _matches(t) {
    return !this.filter || dateOf(t.exit_time || t.entry_time) === this.filter;
  }

  _schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this._draw(); });
  }

  // Draw the rows around the viewport between two spacer rows that stand in for the rest.
  _draw(force = false) {
    const n = this.view.length;
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const visible = Math.ceil((this.scroller.clientHeight || 420) / rowPx);
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / rowPx) - OVERSCAN);
    const last = Math.min(n, first + visible + 2 * OVERSCAN);
    const key = `${first}:${last}:${n}`;
    if (!force && key === this.drawn) return;
    this.drawn = key;
    const rows = [];
    for (let i = first; i < last; i += 1) rows.push(this._row(this.view[i]));
    this.body.replaceChildren(spacer(first * rowPx), ...rows, spacer((n - last) * rowPx));
    if (!this.rowPx && rows.length) {
      // Measure a real row once; redraw if the guess was off, so the spacers add up.
      this.rowPx = rows[0].getBoundingClientRect().height || DEFAULT_ROW_PX;
      if (Math.abs(this.rowPx - rowPx) > 0.5) this._draw(true);
    }
  }

  _row(t) {
    const date = dateOf(t.exit_time || t.entry_time);
    return el('tr', { tabindex: '0', 'aria-selected': String(t.trade_id === this.selected),
      dataset: { tradeId: t.trade_id, date, testid: 'trade-row' } },
    el('td', { class: 'num', text: t.n }),
    el('td', { text: date }),
    cell(t.trade_id, 'mono'),
    el('td', { class: t.side === 'buy' ? 'up' : 'down', text: t.side }),
    el('td', { class: 'num', text: fmtNum(t.quantity) }),
    cell(dateOf(t.entry_time) === date ? timeOfDay(t.entry_time) : `${dateOf(t.entry_time)} ${timeOfDay(t.entry_time)}`),
    el('td', { class: 'num', text: fmtMoney(t.entry_price) }),
    el('td', { text: timeOfDay(t.exit_time) }),
    el('td', { class: 'num', text: fmtMoney(t.exit_price) }),
    el('td', { class: `num ${signClass(t.pnl)}`, text: fmtSigned(t.pnl) }),
    el('td', { class: `num ${signClass(t.pnl_percent)}`, text: t.pnl_percent ?? '' }),
    cell(t.exit_reason || ''));
  }
}

// A cell whose text may be cut by its fixed width: the whole text is its tooltip.
function cell(text, cls) {
  return el('td', { class: cls, text, title: text || undefined });
}

// A row that takes the height of the rows it stands in for (none when 0).
function spacer(px) {
  const tr = el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td', { colspan: String(COLUMNS) }));
  tr.style.height = `${px}px`;
  if (!px) tr.hidden = true;
  return tr;
}
