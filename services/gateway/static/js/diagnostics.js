// Trade diagnostics: the node events a trade's entry_flow_ids / exit_flow_ids point to, each
// with its conditions (left value, operator, right value, result), candles and node variables.
// An option leg shows its whole position (js/position.js): the legs, the payoff diagram, the
// node events of every leg, and for the entry how each leg's strike was chosen.

import { api } from './api.js';
import { dateOf, el, fmtMoney, fmtNum, fmtSigned, fmtValue, signClass } from './dom.js';
import { payoffSection, positionHeader, positionSpan, runSessions } from './position.js';

const minutes = (v) => `${String(Math.floor(v / 60)).padStart(2, '0')}:${String(Math.round(v % 60)).padStart(2, '0')}`;

export class Diagnostics {
  constructor(root) {
    this.root = root;
    this.cache = new Map(); // `${backtest}/${date}` → Promise<DayDetail>
    this.token = 0;
  }

  reset() {
    this.cache.clear();
    this.token++;
    this.root.replaceChildren(el('p', { class: 'muted', text: 'Click a trade to see the node events behind its entry and exit.' }));
  }

  async show(run, trade) {
    const token = ++this.token;
    const position = trade.leg_id ? run.positions.get(trade.position_id) : null;
    const legs = position?.legs.length ? position.legs : [trade];
    const exitDate = position ? positionSpan(legs).exitDate : dateOf(trade.exit_time || trade.entry_time);
    const header = () => (position ? positionHeader(run, position, legs) : this._header(run, trade, exitDate));
    this.root.replaceChildren(header(), el('p', { class: 'muted', text: 'Loading…' }));
    const entryIds = [...new Set(legs.flatMap((t) => t.entry_flow_ids || []))];
    const exitIds = [...new Set(legs.flatMap((t) => t.exit_flow_ids || []))];
    const wanted = [...entryIds, ...exitIds];
    const found = new Map();
    let problem = '';
    // The exit day's file holds the trade; an overnight trade's entry events are in its entry day's.
    const dates = [exitDate, ...legs.map((t) => dateOf(t.exit_time || t.entry_time)), ...legs.map((t) => dateOf(t.entry_time))];
    for (const date of new Set(dates)) {
      if (wanted.every((id) => found.has(id))) break;
      try {
        const day = await this._day(run.id, date);
        for (const id of wanted) if (day.events_history?.[id]) found.set(id, day.events_history[id]);
      } catch (err) {
        problem = `Could not load ${date}: ${err.message}`;
      }
    }
    const missing = wanted.filter((id) => !found.has(id));
    if (missing.length) {
      try {
        for (const [id, ev] of await run.findNodeEvents(missing)) found.set(id, ev);
      } catch { /* shown as not found */ }
    }
    if (token !== this.token) return;
    const sections = [header()];
    if (position) sections.push(payoffSection(legs, runSessions(run)));
    if (problem) sections.push(el('p', { class: 'down', text: problem }));
    sections.push(this._flows('Entry', entryIds, found));
    sections.push(this._flows('Exit', exitIds, found));
    this.root.replaceChildren(...sections);
  }

  _day(id, date) {
    const key = `${id}/${date}`;
    if (!this.cache.has(key)) {
      const p = api.day(id, date);
      p.catch(() => this.cache.delete(key));
      this.cache.set(key, p);
    }
    return this.cache.get(key);
  }

  _header(run, trade, exitDate) {
    const row = (k, v, cls = '') => [el('dt', { text: k }), el('dd', { class: cls, text: v })];
    return el('div', { dataset: { testid: 'diag-header' } },
      el('dl', { class: 'diag-head' },
        ...row('Trade', `${trade.trade_id} · ${trade.side} ${fmtNum(trade.quantity)} · re-entry ${trade.re_entry_num || 0}`),
        ...row('Entry', `${trade.entry_time} @ ${fmtMoney(trade.entry_price)}`),
        ...row('Exit', `${trade.exit_time} @ ${fmtMoney(trade.exit_price)} · ${trade.exit_reason || ''}`),
        ...row('P&L', `${fmtSigned(trade.pnl)} (${trade.pnl_percent ?? '—'} %) · commission ${fmtMoney(trade.commission)} · ${trade.bars_held ?? '—'} bars`, signClass(trade.pnl))),
      el('a', { class: 'button', href: api.dayZipUrl(run.id, exitDate), download: '',
        dataset: { testid: 'diag-day-zip' } }, `Download ${exitDate} ZIP`));
  }

  _flows(label, ids, found) {
    const box = el('section', { 'aria-label': `${label} node events`, dataset: { testid: `diag-${label.toLowerCase()}` } });
    if (!ids.length) {
      box.append(el('p', { class: 'muted', text: `${label}: no node events recorded.` }));
      return box;
    }
    for (const id of ids) {
      const ev = found.get(id);
      box.append(ev ? this._event(label, ev) : el('div', { class: 'flow' },
        el('h3', {}, `${label}: `, el('code', { text: id })), el('p', { class: 'muted', text: 'Not found in the day files.' })));
    }
    return box;
  }

  _event(label, ev) {
    const flow = el('div', { class: 'flow', dataset: { testid: 'node-event', executionId: ev.execution_id } },
      el('h3', {}, `${label}: ${ev.node_name || ev.node_id}`,
        el('span', { class: 'kind', text: `${ev.node_type || ''} · ${ev.node_id} · ${ev.timestamp || ''}` }),
        el('span', { class: ev.signal_emitted ? 'ok' : 'no', text: ev.signal_emitted ? 'signal' : 'no signal' })),
      ev.conditions_preview ? el('div', { class: 'preview mono', text: ev.conditions_preview }) : null);
    const conds = ev.evaluated_conditions || [];
    if (conds.length) {
      flow.append(el('table', { class: 'conds' },
        el('thead', {}, el('tr', {}, ...['Left', 'Value', 'Op', 'Right', 'Value', 'Result'].map(
          (h, i) => el('th', { scope: 'col', class: i === 1 || i === 4 ? 'num' : '', text: h })))),
        el('tbody', {}, ...conds.map((c) => this._condition(c)))));
    } else {
      flow.append(el('p', { class: 'muted', text: 'No conditions: a level or rule fired (see the variables).' }));
    }
    if (ev.strike_selections?.length) flow.append(this._strikes(ev.strike_selections));
    flow.append(this._candles(ev), this._variables(ev));
    return flow;
  }

  // How each leg's contract was chosen at the signal bar.
  _strikes(selections) {
    const heads = ['Leg', 'Selector', 'Spot', 'ATM', 'Strikes', 'Symbol', 'Strike', 'Expiry', 'Premium', 'IV', 'Δ'];
    const numeric = new Set([2, 3, 4, 6, 8, 9, 10]);
    return el('div', { class: 'legs-wrap' }, el('table', { class: 'conds strikes', dataset: { testid: 'strike-selections' } },
      el('caption', { text: 'Strike selection' }),
      el('thead', {}, el('tr', {}, ...heads.map((h, i) => el('th', { scope: 'col', class: numeric.has(i) ? 'num' : '', text: h })))),
      el('tbody', {}, ...selections.map((s) => el('tr', { dataset: { testid: 'strike-row', legId: s.leg_id } },
        el('td', { class: 'mono', text: s.leg_id }),
        el('td', { class: 'mono', text: s.selector || '' }),
        el('td', { class: 'num', text: fmtMoney(s.spot) }),
        el('td', { class: 'num', text: fmtNum(s.atm) }),
        el('td', { class: 'num', text: fmtNum(s.candidates), title: 'strikes considered (listed, with a price at the bar)' }),
        el('td', { class: 'mono', dataset: { testid: 'strike-symbol' }, text: s.symbol || '' }),
        el('td', { class: 'num', text: fmtNum(s.strike) }),
        el('td', { text: s.expiry || '' }),
        el('td', { class: 'num', dataset: { testid: 'strike-premium' }, text: fmtMoney(s.premium) }),
        el('td', { class: 'num', text: `${fmtNum(s.iv)} %` }),
        el('td', { class: 'num', text: Number.isFinite(Number(s.delta)) ? Number(s.delta).toFixed(3) : '—' }))))));
  }

  _condition(c) {
    const crossing = /^crosses_/.test(c.operator || '');
    // Times of day are compared as minutes since midnight; show them as clock times.
    const clock = /^time$/i.test(c.lhs || '') || /^\d\d:\d\d$/.test(c.rhs || '');
    const value = (v) => (clock ? minutes(v ?? 0) : fmtValue(v ?? 0));
    const prev = (v) => (crossing ? ` (prev ${value(v)})` : '');
    return el('tr', { dataset: { testid: 'condition-row', result: String(!!c.result) } },
      el('td', { class: 'mono', text: c.lhs || '' }),
      el('td', { class: 'num', dataset: { testid: 'lhs-value' }, text: value(c.lhs_value) + prev(c.lhs_prev_value) }),
      el('td', { class: 'mono', dataset: { testid: 'operator' }, text: c.operator || '' }),
      el('td', { class: 'mono', text: c.rhs || '' }),
      el('td', { class: 'num', dataset: { testid: 'rhs-value' }, text: value(c.rhs_value) + prev(c.rhs_prev_value) }),
      el('td', { class: c.result ? 'ok' : 'no', dataset: { testid: 'result' }, text: c.result ? '✓ true' : '✗ false' }));
  }

  _candles(ev) {
    const fmt = (name, c) => (c ? `${name} ${c.timestamp?.slice(11, 16) || ''} O ${fmtNum(c.open)} H ${fmtNum(c.high)} L ${fmtNum(c.low)} C ${fmtNum(c.close)}` : null);
    const parts = [fmt('bar', ev.current_candle), fmt('prev', ev.previous_candle)].filter(Boolean);
    return parts.length ? el('div', { class: 'vars mono' }, ...parts.map((p) => el('span', { text: p }))) : '';
  }

  _variables(ev) {
    const vars = Object.entries(ev.variables || {});
    if (!vars.length && !ev.position_id) return '';
    return el('div', { class: 'vars' },
      ev.position_id ? el('span', {}, 'position ', el('b', { text: `${ev.position_id}${ev.action ? ` (${ev.action})` : ''}` })) : null,
      ...vars.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => el('span', {}, `${k} `, el('b', { text: fmtNum(v) }))));
  }
}
