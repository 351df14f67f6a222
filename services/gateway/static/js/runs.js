// The list of earlier runs (GET /backtests, newest first); a click opens one, its 'analytics'
// link opens it on its Analytics tab.

import { api } from './api.js';
import { el, fmtSigned, signClass, statusName } from './dom.js';

export class RunsList {
  constructor(root, onOpen) {
    this.root = root;
    this.onOpen = onOpen;
    this.current = null;
    root.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-id]');
      if (b) this.onOpen(b.dataset.id);
    });
  }

  async refresh() {
    try {
      const res = await api.list();
      const runs = res.backtests || [];
      this.root.replaceChildren(...(runs.length ? runs.map((bt) => this._item(bt))
        : [el('li', { class: 'muted', text: 'No runs yet.' })]));
    } catch (err) {
      this.root.replaceChildren(el('li', { class: 'down', text: `Could not list runs: ${err.message}` }));
    }
    this.mark(this.current);
  }

  mark(id) {
    this.current = id;
    for (const b of this.root.querySelectorAll('button[data-id]')) b.setAttribute('aria-current', String(b.dataset.id === id));
  }

  _item(bt) {
    const status = statusName(bt.status);
    const c = bt.config || {};
    const pnl = bt.summary?.total_pnl;
    const when = bt.created_at ? new Date(bt.created_at).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'short' }) : '';
    // A finished run's Analytics tab, straight from the list.
    const finished = status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';
    const analytics = finished && el('a', { class: 'an-link', href: `#bt=${encodeURIComponent(bt.backtest_id)}/analytics`,
      title: 'Open the analytics of this run', dataset: { testid: 'run-analytics', id: bt.backtest_id } }, 'analytics');
    return el('li', { class: analytics ? 'with-link' : undefined }, el('button', { type: 'button', dataset: { id: bt.backtest_id, testid: 'run-item', status },
      'aria-label': `Open ${c.strategy?.name || bt.strategy_id} on ${c.symbol}, ${c.start_date} to ${c.end_date}, ${status.toLowerCase()}` },
    el('span', { class: `dot ${status}`, title: status }),
    el('span', { text: c.strategy?.name || bt.strategy_id || bt.backtest_id }),
    el('span', { class: `num ${signClass(pnl)}`, text: pnl !== undefined ? fmtSigned(pnl) : status.toLowerCase() }),
    el('span', { class: 'meta', text: `${c.symbol || ''} · ${c.start_date || '…'} → ${c.end_date || '…'} · ${bt.summary?.total_trades ?? 0} trades · ${when}` })),
    analytics);
  }
}
