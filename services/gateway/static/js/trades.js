// The trades table, windowed: only the rows in (or near) the scroll viewport are in the DOM.
//
// A run can have tens of thousands of trades. A table re-lays out all its rows whenever rows
// are added, so a table holding every trade slowed a 50,000-trade run to minutes and froze the
// page for seconds at a time. Here the trades live in an array; the DOM holds a spacer row, the
// rows that can be seen (plus a margin), and a spacer row, re-drawn on scroll and on new trades.
// A click (or Enter) on a row selects its trade.
//
// Option legs (trades with a leg_id) are grouped under their position: a position row (its
// legs' combined P&L as they arrive) followed by its leg rows. A run without legs keeps the
// flat table, built incrementally as before.

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
    this.view = this.all;    // the trades shown, in table order: `all`, or those closed on `filter`
    this.entries = [];       // grouped: underlying trades and positions, in order of first arrival
    this.positions = new Map(); // position id → {position_id, legs, pnl, entry_time, exit_time, exit_reason}
    this.rows = this.view;   // what the rows show: trades, and positions when grouped
    this.grouped = false;    // true once an option leg has arrived
    this.selected = null;    // trade id, or `pos:<position id>` for a position and its legs
    this.filter = null;      // a date, or null for all
    this.rowPx = 0;          // measured height of one row
    this.drawn = '';         // the window last drawn (skip identical redraws)
    this.drawnRows = 0;      // how many rows the spacers stood for then
    this.top = spacer();     // the spacer rows above and below the drawn ones
    this.bottom = spacer();
    this.frame = 0;
    this.scroller.addEventListener('scroll', () => this._schedule(), { passive: true });
    window.addEventListener('resize', () => this._schedule());
    body.addEventListener('click', (e) => {
      const tr = e.target.closest(ROW);
      if (tr) this.onSelect(this._tradeOf(tr));
    });
    body.addEventListener('keydown', (e) => {
      const tr = e.target.closest(ROW);
      if (tr && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.onSelect(this._tradeOf(tr));
      }
    });
  }

  // A leg row or a position row stands for its position, which its first leg leads to.
  _tradeOf(tr) {
    if (tr.dataset.tradeId) return this.byId.get(tr.dataset.tradeId);
    return this.positions.get(tr.dataset.positionId)?.legs[0];
  }

  // Trade ids in table order (all of them, not only the drawn rows).
  ids() {
    return this.view.map((t) => t.trade_id);
  }

  reset() {
    this.all = [];
    this.byId.clear();
    this.view = this.all;
    this.entries = [];
    this.positions.clear();
    this.rows = this.view;
    this._setGrouped(false);
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
      if (t.leg_id) this._addLeg(t);
      else this.entries.push(t);
      if (!this.grouped && this.view !== this.all && this._matches(t)) this.view.push(t);
      added += 1;
    }
    if (!added) return;
    // Grouped, a leg may join a position already drawn: redraw. Flat, new trades go at the end.
    if (this.grouped) this._regroup();
    this.count.textContent = fmtInt(this.all.length);
    this._draw(this.grouped);
  }

  select(trade) {
    this.selected = trade ? keyOf(trade) : null;
    for (const tr of this.body.querySelectorAll(ROW)) {
      tr.setAttribute('aria-selected', String(rowKey(tr) === this.selected));
    }
  }

  // Show only the trades that closed on `date` (null: all).
  setFilter(date) {
    this.filter = date;
    if (this.grouped) this._regroup();
    else this.rows = this.view = date ? this.all.filter((t) => this._matches(t)) : this.all;
    this.filterLabel.hidden = !date;
    this.filterLabel.textContent = date ? `closed on ${date}` : '';
    this.scroller.scrollTop = 0;
    this._draw(true);
  }

  _matches(t) {
    return !this.filter || dateOf(t.exit_time || t.entry_time) === this.filter;
  }

  _addLeg(t) {
    let p = this.positions.get(t.position_id);
    if (!p) {
      p = { position_id: t.position_id, legs: [], pnl: 0, entry_time: t.entry_time, exit_time: '', exit_reason: '' };
      this.positions.set(t.position_id, p);
      this.entries.push(p);
    }
    p.legs.push(t);
    p.pnl += Number(t.pnl) || 0;
    if (t.entry_time < p.entry_time) p.entry_time = t.entry_time;
    if ((t.exit_time || '') >= p.exit_time) {
      p.exit_time = t.exit_time || '';
      p.exit_reason = t.exit_reason || '';
    }
    if (!this.grouped) this._setGrouped(true);
  }

  // Rows of the grouped table: each position (with a leg shown) followed by its legs shown.
  // Rebuilt whole when legs arrive (once a frame at most): a leg joins its position's rows,
  // which need not be the last ones.
  _regroup() {
    const rows = [];
    const view = [];
    for (const item of this.entries) {
      if (!item.legs) {
        if (this._matches(item)) {
          rows.push(item);
          view.push(item);
        }
        continue;
      }
      const legs = this.filter ? item.legs.filter((t) => this._matches(t)) : item.legs;
      if (!legs.length) continue;
      rows.push(item, ...legs);
      view.push(...legs);
    }
    this.rows = rows;
    this.view = view;
  }

  // Option runs relabel the columns that hold something else for legs.
  _setGrouped(on) {
    this.grouped = on;
    const table = this.body.closest('table');
    table?.classList.toggle('grouped', on);
    for (const th of table?.querySelectorAll('th[data-leg-label]') || []) {
      if (!th.dataset.label) th.dataset.label = th.textContent;
      th.textContent = on ? th.dataset.legLabel : th.dataset.label;
    }
  }

  _schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this._draw(); });
  }

  // Draw the rows around the viewport between two spacer rows that stand in for the rest.
  // New trades below the window only grow the bottom spacer: the drawn rows stay as they are.
  _draw(force = false) {
    const n = this.rows.length;
    const rowPx = this.rowPx || DEFAULT_ROW_PX;
    const visible = Math.ceil((this.scroller.clientHeight || 420) / rowPx);
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / rowPx) - OVERSCAN);
    const last = Math.min(n, first + visible + 2 * OVERSCAN);
    const key = `${first}:${last}`;
    if (!force && key === this.drawn) {
      if (n !== this.drawnRows) {
        this.drawnRows = n;
        setHeight(this.bottom, (n - last) * rowPx);
      }
      return;
    }
    this.drawn = key;
    this.drawnRows = n;
    const rows = [];
    for (let i = first; i < last; i += 1) rows.push(this._row(this.rows[i]));
    setHeight(this.top, first * rowPx);
    setHeight(this.bottom, (n - last) * rowPx);
    this.body.replaceChildren(this.top, ...rows, this.bottom);
    if (!this.rowPx && rows.length) {
      // Measure a real row once; redraw if the guess was off, so the spacers add up.
      this.rowPx = rows[0].getBoundingClientRect().height || DEFAULT_ROW_PX;
      if (Math.abs(this.rowPx - rowPx) > 0.5) this._draw(true);
    }
  }

  _row(item) {
    if (item.legs) return this._positionRow(item);
    if (item.leg_id) return this._legRow(item);
    return this._tradeRow(item);
  }

  _tradeRow(t) {
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
    // Grouped, this column holds legs' strikes: a trade of the underlying leaves it empty.
    el('td', { class: `num ${signClass(t.pnl_percent)}`, text: this.grouped ? '' : t.pnl_percent ?? '' }),
    cell(t.exit_reason || ''));
  }

  _positionRow(p) {
    const date = dateOf(p.exit_time || p.entry_time);
    const strikes = [...new Set(p.legs.map((t) => fmtNum(t.strike)))].join(' / ');
    return el('tr', { tabindex: '0', class: 'position', 'aria-selected': String(`pos:${p.position_id}` === this.selected),
      dataset: { positionId: p.position_id, date, testid: 'position-row', legs: String(p.legs.length), pnl: p.pnl.toFixed(2) } },
    el('td', { class: 'num', text: '' }),
    el('td', { text: date }),
    cell(p.position_id, 'mono strong'),
    el('td', {}),
    el('td', { class: 'num', text: `${p.legs.length} ${p.legs.length === 1 ? 'leg' : 'legs'}` }),
    cell(dateOf(p.entry_time) === date ? timeOfDay(p.entry_time) : `${dateOf(p.entry_time)} ${timeOfDay(p.entry_time)}`),
    netPremium(p.legs, 'entry_price', 'sell'),
    el('td', { text: timeOfDay(p.exit_time) }),
    netPremium(p.legs, 'exit_price', 'buy'),
    el('td', { class: `num strong ${signClass(p.pnl)}`, dataset: { testid: 'position-pnl' }, text: fmtSigned(p.pnl) }),
    cell(strikes, 'num'),
    cell(p.exit_reason));
  }

  _legRow(t) {
    const date = dateOf(t.exit_time || t.entry_time);
    return el('tr', { tabindex: '0', class: 'leg', 'aria-selected': String(`pos:${t.position_id}` === this.selected),
      dataset: { tradeId: t.trade_id, positionId: t.position_id, date, testid: 'trade-row', kind: 'leg' } },
    el('td', { class: 'num', text: t.n }),
    el('td', { text: date }),
    el('td', { class: 'mono leg-symbol', text: t.symbol, title: `${t.trade_id} · ${t.symbol}` }),
    el('td', { class: t.side === 'buy' ? 'up' : 'down', text: t.side }),
    el('td', { class: 'num', text: fmtNum(t.lots), title: `${fmtNum(t.quantity)} units (${fmtNum(t.lots)} × ${fmtNum(t.lot_size)})` }),
    cell(dateOf(t.entry_time) === date ? timeOfDay(t.entry_time) : `${dateOf(t.entry_time)} ${timeOfDay(t.entry_time)}`),
    el('td', { class: 'num', text: fmtMoney(t.entry_price) }),
    el('td', { text: timeOfDay(t.exit_time) }),
    el('td', { class: 'num', text: fmtMoney(t.exit_price) }),
    el('td', { class: `num ${signClass(t.pnl)}`, text: fmtSigned(t.pnl) }),
    el('td', { class: 'num', text: `${fmtNum(t.strike)} ${t.option_type || ''}` }),
    cell(t.exit_reason || ''));
  }
}

// The premium a position's legs took in (cr) or paid out (dr) at their entries or exits, in
// points per unit: shown only when every leg has as many units, where points add up.
function netPremium(legs, field, credited) {
  if (legs.some((t) => t.quantity !== legs[0].quantity)) return el('td', {});
  const net = legs.reduce((sum, t) => sum + (t.side === credited ? 1 : -1) * Number(t[field]), 0);
  return el('td', { class: 'num', text: `${fmtMoney(Math.abs(net))} ${net >= 0 ? 'cr' : 'dr'}`,
    title: `net ${net >= 0 ? 'credit' : 'debit'} per unit, ${field === 'entry_price' ? 'at entry' : 'at exit'}` });
}

const ROW = 'tr[data-trade-id], tr[data-position-id]';
// What selecting a trade selects: an option leg selects its whole position.
const keyOf = (t) => (t.leg_id ? `pos:${t.position_id}` : t.trade_id);
const rowKey = (tr) => (tr.dataset.positionId ? `pos:${tr.dataset.positionId}` : tr.dataset.tradeId);

// A cell whose text may be cut by its fixed width: the whole text is its tooltip.
function cell(text, cls) {
  return el('td', { class: cls, text, title: text || undefined });
}

// A row that takes the height of the rows it stands in for (hidden when 0).
function spacer() {
  return el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td', { colspan: String(COLUMNS) }));
}

function setHeight(tr, px) {
  tr.style.height = `${px}px`;
  tr.hidden = !px;
}
