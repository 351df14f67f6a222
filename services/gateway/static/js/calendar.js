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
    const redraw = rescale ? days.keys() : changed;
    for (const date of redraw) this._paint(days.get(date));
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
      cell.classList.replace('off', 'day');
      cell.dataset.testid = 'calendar-day';
    }
    cell.classList.toggle('running', day.status === 'running');
    cell.classList.remove('pos', 'neg', 'flat');
    if (day.status === 'done') {
      cell.classList.add(day.pnl > 0 ? 'pos' : day.pnl < 0 ? 'neg' : 'flat');
      // Intensity from 0.25 to 1 by the day's share of the largest day.
      const share = this.scale > 0 ? Math.abs(day.pnl) / this.scale : 0;
      cell.style.setProperty('--a', (0.25 + 0.75 * Math.sqrt(share)).toFixed(3));
      cell.dataset.pnl = String(day.pnl);
      const label = `${day.date}: P&L ${fmtSigned(day.pnl)}, ${day.trades} trade${day.trades === 1 ? '' : 's'}`;
      cell.title = label;
      cell.setAttribute('aria-label', label);
      cell.dataset.state = 'done';
    } else {
      cell.title = `${day.date}: running`;
      cell.setAttribute('aria-label', cell.title);
      cell.dataset.state = 'running';
    }
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
  _month(ym) {
    if (this.months.has(ym)) return;
    this.months.add(ym);
    const [y, m] = ym.split('-').map(Number);
    const block = el('div', { class: 'month', role: 'group', 'aria-label': `${MONTHS[m - 1]} ${y}` },
      el('div', { class: 'mname', text: `${MONTHS[m - 1]} ${y}` }),
      ...WEEKDAYS.map((d) => el('div', { class: 'wd', 'aria-hidden': 'true', text: d })));
    const first = new Date(Date.UTC(y, m - 1, 1));
    const offset = (first.getUTCDay() + 6) % 7; // Monday first
    for (let i = 0; i < offset; i++) block.append(el('span', { class: 'cell blank', 'aria-hidden': 'true' }));
    const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
    for (let d = 1; d <= n; d++) {
      const date = `${ym}-${String(d).padStart(2, '0')}`;
      // Disabled until the day is traded (weekends, holidays and days not yet run stay so).
      const cell = el('button', { type: 'button', class: 'cell off', disabled: true, 'aria-pressed': 'false',
        'aria-label': date, dataset: { date } });
      block.append(cell);
      this.cells.set(date, cell);
    }
    // Months arrive in order; insert by key anyway, so a replay out of order still sorts.
    const after = [...this.root.children].find((b) => b.dataset.ym > ym);
    block.dataset.ym = ym;
    this.root.insertBefore(block, after || null);
  }
}
