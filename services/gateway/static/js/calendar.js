// The calendar of trading days: one block per month, a cell per day coloured by its P&L
// (green or red, deeper for larger amounts relative to the run's largest day so far).

import { el, fmtSigned } from './dom.js';

const WEEKDAYS = ['M', 'T', 'W', 'T', 'F', 'S', 'S'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export class Calendar {
  constructor(root, onSelect) {
    this.root = root;
    this.onSelect = onSelect;
    this.cells = new Map();  // date → button
    this.months = new Set();
    this.scale = 0;          // largest |pnl| of a day so far
    this.selected = null;
    root.addEventListener('click', (e) => {
      const cell = e.target.closest('button.day');
      if (cell) this.onSelect(cell.dataset.date === this.selected ? null : cell.dataset.date);
    });
  }

  reset() {
    this.root.replaceChildren();
    this.cells.clear();
    this.months.clear();
    this.scale = 0;
    this.selected = null;
  }

  // `days`: the RunState's map; `changed`: the dates to redraw.
  update(days, changed) {
    let rescale = false;
    for (const date of changed) {
      const day = days.get(date);
      if (day.status === 'done' && Math.abs(day.pnl) > this.scale) {
        this.scale = Math.abs(day.pnl);
        rescale = true;
      }
    }
    for (const date of changed) this._paint(days.get(date));
    // A new largest day changes every day's shade, and nothing else of them.
    if (rescale) for (const day of days.values()) if (day.status === 'done' && !changed.has(day.date)) this._shade(day);
  }

  select(date) {
    if (this.selected) this.cells.get(this.selected)?.setAttribute('aria-pressed', 'false');
    this.selected = date;
    if (date) this.cells.get(date)?.setAttribute('aria-pressed', 'true');
  }

  _paint(day) {
    const cell = this._cell(day.date);
    if (cell.disabled) {
      cell.disabled = false;
      cell.dataset.testid = 'calendar-day';
    }
    let label;
    if (day.status === 'done') {
      cell.className = `cell day ${day.pnl > 0 ? 'pos' : day.pnl < 0 ? 'neg' : 'flat'}`;
      this._shade(day, cell);
      cell.dataset.pnl = String(day.pnl);
      label = `${day.date}: P&L ${fmtSigned(day.pnl)}, ${day.trades} trade${day.trades === 1 ? '' : 's'}`;
      cell.dataset.state = 'done';
    } else {
      cell.className = 'cell day running';
      label = `${day.date}: running`;
      cell.dataset.state = 'running';
    }
    cell.title = label;
    cell.setAttribute('aria-label', label);
  }

  // Intensity from 0.25 to 1 by the day's share of the largest day.
  _shade(day, cell = this.cells.get(day.date)) {
    const share = this.scale > 0 ? Math.abs(day.pnl) / this.scale : 0;
    cell.style.setProperty('--a', (0.25 + 0.75 * Math.sqrt(share)).toFixed(3));
  }

  _cell(date) {
    let cell = this.cells.get(date);
    if (!cell) {
      this._month(date.slice(0, 7));
      cell = this.cells.get(date);
    }
    return cell;
  }

  // A month block: placeholders for all its days, so trading days fill in at their weekday.
  // Cloned from a block built once per shape (first weekday, days): a decade has 120 months.
  _month(ym) {
    if (this.months.has(ym)) return;
    this.months.add(ym);
    const [y, m] = ym.split('-').map(Number);
    const offset = (new Date(Date.UTC(y, m - 1, 1)).getUTCDay() + 6) % 7; // Monday first
    const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
    const block = monthShape(offset, n).cloneNode(true);
    const name = `${MONTHS[m - 1]} ${y}`;
    block.setAttribute('aria-label', name);
    block.firstChild.textContent = name;
    block.dataset.ym = ym;
    // Disabled until the day is traded (weekends, holidays and days not yet run stay so).
    const cells = block.querySelectorAll('button');
    for (let d = 1; d <= n; d++) {
      const date = `${ym}-${d < 10 ? '0' : ''}${d}`;
      const cell = cells[d - 1];
      cell.setAttribute('aria-label', date);
      cell.dataset.date = date;
      this.cells.set(date, cell);
    }
    // Months arrive in order; insert by key anyway, so a replay out of order still sorts.
    let after = null;
    for (let b = this.root.lastElementChild; b && b.dataset.ym > ym; b = b.previousElementSibling) after = b;
    this.root.insertBefore(block, after);
  }
}

const shapes = new Map();

function monthShape(offset, n) {
  const key = offset * 100 + n;
  if (!shapes.has(key)) {
    const block = el('div', { class: 'month', role: 'group' }, el('div', { class: 'mname' }),
      ...WEEKDAYS.map((d) => el('div', { class: 'wd', 'aria-hidden': 'true', text: d })));
    for (let i = 0; i < offset; i++) block.append(el('span', { class: 'cell blank', 'aria-hidden': 'true' }));
    for (let d = 1; d <= n; d++) block.append(el('button', { type: 'button', class: 'cell off', disabled: true, 'aria-pressed': 'false' }));
    shapes.set(key, block);
  }
  return shapes.get(key);
}
