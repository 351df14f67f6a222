// An option position in the trade panel: its legs' combined result, its payoff diagram
// (js/payoff.js, "now" priced at the legs' exits or their entries) and a table of its legs.

import { api } from './api.js';
import { dateOf, el, fmtMoney, fmtNum, fmtSigned, signClass } from './dom.js';
import { isWeekday, payoffChart } from './payoff.js';

// The leg that closed last (the position's exit), and the position's time span.
export function positionSpan(legs) {
  const last = legs.reduce((a, t) => ((t.exit_time || '') > (a.exit_time || '') ? t : a), legs[0]);
  const entry = legs.reduce((a, t) => (t.entry_time < a ? t.entry_time : a), legs[0].entry_time);
  return { entry, exit: last.exit_time || '', reason: last.exit_reason || '', exitDate: dateOf(last.exit_time || entry) };
}

export function positionHeader(run, position, legs) {
  const span = positionSpan(legs);
  const sum = (field) => legs.reduce((a, t) => a + (Number(t[field]) || 0), 0);
  const total = position?.summary?.trade_ids?.length || 0;
  const count = total > legs.length ? `${legs.length} of ${total} legs closed` : `${legs.length} ${legs.length === 1 ? 'leg' : 'legs'}`;
  // Sum over legs of side × premium × units: + a net debit, - a net credit (as PositionSummary).
  const premium = position?.summary?.entry_premium ?? legs.reduce((a, t) => a + (t.side === 'buy' ? 1 : -1) * Number(t.entry_price) * Number(t.quantity), 0);
  const net = Number(premium) <= 0 ? `net credit ${fmtMoney(-premium)}` : `net debit ${fmtMoney(premium)}`;
  const row = (k, v, cls = '') => [el('dt', { text: k }), el('dd', { class: cls, text: v })];
  return el('div', { dataset: { testid: 'diag-header' } },
    el('dl', { class: 'diag-head' },
      ...row('Position', `${legs[0].position_id} · ${count} · ${legs[0].entry_trigger || ''}`),
      ...row('Entry', `${span.entry} · ${net}`),
      ...row('Exit', `${span.exit} · ${span.reason}`),
      ...row('P&L', `${fmtSigned(sum('pnl'))} (sum of the legs) · commission ${fmtMoney(sum('commission'))}`, signClass(sum('pnl')))),
    el('a', { class: 'button', href: api.dayZipUrl(run.id, span.exitDate), download: '',
      dataset: { testid: 'diag-day-zip' } }, `Download ${span.exitDate} ZIP`));
}

// Which dates are sessions: the run's days where the run has been (holidays are the weekdays
// it skipped), weekdays beyond.
export function runSessions(run) {
  const dates = [...run.days.keys()].sort();
  if (!dates.length) return isWeekday;
  const first = dates[0];
  const end = run.finished ? run.config?.end_date || '' : '';
  const through = end > dates[dates.length - 1] ? end : dates[dates.length - 1];
  return (date) => (date >= first && date <= through ? run.days.has(date) : isWeekday(date));
}

// The payoff diagram with its "now at exit / at entry" switch, and the legs' table.
export function payoffSection(legs, isSession = isWeekday) {
  const box = el('section', { class: 'payoff-box', 'aria-label': 'Payoff', dataset: { testid: 'payoff' } });
  const figure = el('figure', { class: 'payoff-figure' });
  const buttons = ['exit', 'entry'].map((at) => el('button', { type: 'button', class: 'seg', dataset: { at, testid: `payoff-at-${at}` },
    onclick: () => draw(at) }, `at ${at}`));
  const draw = (at) => {
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.at === at));
    figure.replaceChildren(payoffChart(legs, at, isSession), el('figcaption', { class: 'muted',
      text: `At expiry: every leg held to ${[...new Set(legs.map((t) => t.expiry))].join(', ')} 15:30, before costs. `
        + `Now: each leg priced by Black-Scholes at its ${at} with its IV then, r 6.5 %, trading time to expiry `
        + '(375-minute sessions, 252 a year; the run\'s holidays and weekends skipped).' }));
  };
  draw(legs.every((t) => t.exit_time) ? 'exit' : 'entry');
  box.append(el('h3', {}, 'Payoff', el('span', { class: 'seg-group', role: 'group', 'aria-label': 'Price "now" at' },
    el('span', { class: 'muted', text: 'now:' }), ...buttons)), figure, legsTable(legs));
  return box;
}

function legsTable(legs) {
  const heads = ['Leg', 'Symbol', 'Side', 'Lots', 'Entry prem', 'Exit prem', 'Spot entry', 'Spot exit',
    'IV entry', 'IV exit', 'Δ entry', 'Δ exit', 'P&L'];
  const num = (v, digits) => (Number.isFinite(Number(v)) ? Number(v).toFixed(digits) : '—');
  return el('div', { class: 'legs-wrap' }, el('table', { class: 'legs', dataset: { testid: 'legs-table' } },
    el('thead', {}, el('tr', {}, ...heads.map((h, i) => el('th', { scope: 'col', class: i >= 3 ? 'num' : '', text: h })))),
    el('tbody', {}, ...legs.map((t) => el('tr', { dataset: { testid: 'leg-row', tradeId: t.trade_id } },
      el('td', { class: 'mono', text: t.leg_id }),
      el('td', { class: 'mono', text: t.symbol }),
      el('td', { class: t.side === 'buy' ? 'up' : 'down', text: t.side }),
      el('td', { class: 'num', text: fmtNum(t.lots), title: `${fmtNum(t.quantity)} units` }),
      el('td', { class: 'num', text: fmtMoney(t.entry_price) }),
      el('td', { class: 'num', text: fmtMoney(t.exit_price) }),
      el('td', { class: 'num', text: fmtMoney(t.underlying_at_entry) }),
      el('td', { class: 'num', text: fmtMoney(t.underlying_at_exit) }),
      el('td', { class: 'num', text: `${num(t.iv_at_entry, 2)} %` }),
      el('td', { class: 'num', text: `${num(t.iv_at_exit, 2)} %` }),
      el('td', { class: 'num', text: num(t.delta_at_entry, 3) }),
      el('td', { class: 'num', text: num(t.delta_at_exit, 3) }),
      el('td', { class: `num ${signClass(t.pnl)}`, text: fmtSigned(t.pnl) }))))));
}
