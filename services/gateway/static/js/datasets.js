// The Datasets view (#datasets): the caller's datasets (GET /datasets: built-in, server and their
// own uploads), a dataset's quality report and first and last rows (GET /datasets/{symbol}),
// deleting an upload (DELETE /datasets/{symbol}), and uploading a CSV, CSV.gz or Parquet file
// (POST /datasets/{symbol}:upload, the file as the raw body; api.js `upload`). A refused upload
// (400) shows the findings that refused it, from the QualityReport in the error's details.
// After an upload or a delete, `onChanged` has the forms' symbol lists loaded again.

import { api, ApiError, upload } from './api.js';
import { el, fmtInt, fmtNum, fmtValue } from './dom.js';

const REPORT_TYPE = 'type.googleapis.com/hindsight.v1.QualityReport';
const SEVERITIES = { QUALITY_SEVERITY_ERROR: 'error', QUALITY_SEVERITY_WARNING: 'warning', QUALITY_SEVERITY_INFO: 'info' };
const severity = (s) => SEVERITIES[s] || String(s || '').replace('QUALITY_SEVERITY_', '').toLowerCase() || 'info';

export function fmtBytes(v) {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let x = n / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

// The QualityReport in an error's details (a refused upload), or null.
export function refusedReport(err) {
  return (err?.body?.details || []).find((d) => d['@type'] === REPORT_TYPE) || null;
}

export class DatasetsView {
  /** @param {object} hooks onChanged(): a dataset was uploaded or deleted */
  constructor(root, { onChanged }) {
    this.root = root;
    this.onChanged = onChanged;
    this.datasets = [];
    this.busy = false;
    this.listSeq = 0;
    this.detailSeq = 0;
    this._build();
  }

  // The view is shown: the list again.
  show() {
    this.refresh();
  }

  async refresh() {
    const mine = ++this.listSeq;
    this.list.dataset.state = 'loading';
    let list;
    try {
      list = (await api.datasets()).datasets || [];
    } catch (err) {
      if (mine !== this.listSeq) return;
      this.list.dataset.state = 'error';
      this.body.replaceChildren(el('tr', {}, el('td', { colspan: 9, class: 'down', text: `Could not list datasets: ${err.message}` })));
      return;
    }
    if (mine !== this.listSeq) return;
    this.datasets = list;
    this.count.textContent = String(list.length);
    this.body.replaceChildren(...(list.length ? list.map((d) => this._row(d))
      : [el('tr', {}, el('td', { colspan: 9, class: 'muted', text: 'No datasets.' }))]));
    this.list.dataset.state = 'ready';
  }

  // ---- the list ---------------------------------------------------------------------------

  _row(d) {
    const uploaded = d.source === 'upload';
    const details = el('button', { type: 'button', class: 'link', dataset: { testid: 'ds-details-button' },
      'aria-label': `Details of ${d.symbol}`, onclick: () => this.details(d.symbol) }, 'Details');
    const del = uploaded && el('button', { type: 'button', class: 'link danger', dataset: { testid: 'ds-delete-button' },
      'aria-label': `Delete ${d.symbol}`, onclick: () => this.remove(d.symbol) }, 'Delete');
    return el('tr', { dataset: { testid: 'ds-row', symbol: d.symbol, source: d.source || '' } },
      el('th', { scope: 'row', class: 'mono', text: d.symbol, title: d.description || '' }),
      el('td', {}, el('span', { class: `src ${d.source || ''}`, text: d.source || '—' })),
      el('td', { text: d.timeframe || '—' }),
      el('td', { text: d.first_date && d.last_date ? `${d.first_date} → ${d.last_date}` : '—' }),
      el('td', { class: 'num', text: fmtInt(d.bars) }),
      el('td', { class: 'num', dataset: { testid: 'ds-score' }, text: uploaded ? fmtNum(d.quality_score ?? 0) : '—' }),
      el('td', { class: 'num', text: uploaded ? fmtBytes(d.stored_bytes) : '—' }),
      el('td', { text: [d.calendar, d.timezone].filter(Boolean).join(' · ') || '—' }),
      el('td', { class: 'actions' }, details, del));
  }

  async details(symbol) {
    const mine = ++this.detailSeq;
    this._say(`Loading ${symbol}…`);
    let res;
    try {
      res = await api.dataset(symbol);
    } catch (err) {
      if (mine !== this.detailSeq) return;
      this._say(`Could not read ${symbol}: ${err.message}`, true);
      return;
    }
    if (mine !== this.detailSeq) return;
    this._say('');
    this._showReport(res.dataset?.symbol || symbol, res.quality, { dataset: res.dataset, head: res.head, tail: res.tail });
  }

  async remove(symbol) {
    if (!window.confirm(`Delete the dataset ${symbol}? Runs already made on it keep their results.`)) return;
    this._say(`Deleting ${symbol}…`);
    try {
      await api.deleteDataset(symbol);
    } catch (err) {
      this._say(`Could not delete ${symbol}: ${err.message}`, true);
      return;
    }
    this._say(`Deleted ${symbol}.`);
    if (this.report.dataset.symbol === symbol) this._clearReport();
    await this.refresh();
    this.onChanged?.();
  }

  // ---- the upload -------------------------------------------------------------------------

  async submit() {
    if (this.busy) return;
    const file = this.file.files?.[0];
    const symbol = this.symbol.value.trim();
    if (!file) return this._status('Choose a file to upload.', true);
    if (!symbol) {
      this.symbol.focus();
      return this._status('Give the dataset a symbol.', true);
    }
    const q = new URLSearchParams();
    if (this.calendar.value.trim()) q.set('calendar', this.calendar.value.trim());
    if (this.timezone.value.trim()) q.set('timezone', this.timezone.value.trim());
    const path = `api/v1/datasets/${encodeURIComponent(symbol)}:upload${q.toString() ? `?${q}` : ''}`;
    this.busy = true;
    this.button.disabled = true;
    this.form.dataset.state = 'uploading';
    this._status(`uploading ${file.name} (${fmtBytes(file.size)})…`);
    try {
      const res = await upload(path, file, {
        onProgress: (sent, total) => {
          if (this.form.dataset.state === 'uploading' && total) this._status(`uploading ${file.name}… ${Math.floor((sent / total) * 100)} %`);
        },
        onSent: () => {
          this.form.dataset.state = 'checking';
          this._status(`checking ${symbol}…`);
        },
      });
      this.form.dataset.state = 'done';
      ++this.detailSeq; // a Details still loading does not replace this report
      const score = res.quality?.score;
      this._status(`Uploaded ${res.dataset?.symbol || symbol}${score !== undefined ? ` · quality ${fmtNum(score)} / 100` : ''}.`);
      this._showReport(res.dataset?.symbol || symbol, res.quality, { dataset: res.dataset, head: res.head, tail: res.tail });
      this.file.value = '';
      this.symbol.value = '';
      await this.refresh();
      this.onChanged?.();
    } catch (err) {
      this.form.dataset.state = 'error';
      this._uploadProblem(symbol, err);
    } finally {
      this.busy = false;
      this.button.disabled = false;
    }
  }

  _uploadProblem(symbol, err) {
    const status = err instanceof ApiError ? err.status : 0;
    const report = status === 400 ? refusedReport(err) : null;
    if (report) {
      const errors = (report.findings || []).filter((f) => severity(f.severity) === 'error').length;
      this._status(`${symbol} was refused: ${errors || 'an'} error${errors === 1 ? '' : 's'} in the file (nothing was kept).`, true);
      this._showReport(symbol, report, { refused: true });
      return;
    }
    if (status === 413) this._status(`The file is over the upload limit: ${err.message}`, true);
    else if (status === 409) this._status(`The symbol ${symbol} is taken (yours or a shared dataset's): choose another.`, true);
    else this._status(`Upload failed: ${err.message}`, true);
  }

  // ---- the quality report (Details and the upload's answer) ---------------------------------

  _showReport(symbol, quality, { dataset, head, tail, refused = false } = {}) {
    const r = quality || null;
    this.report.dataset.symbol = symbol;
    this.report.dataset.state = refused ? 'refused' : 'ready';
    this.report.dataset.score = r ? String(r.score ?? 0) : '';
    const parts = [];
    const title = el('h2', { id: 'ds-report-h' }, refused ? `${symbol}: refused` : symbol,
      dataset?.description ? el('span', { class: 'hint', text: dataset.description }) : null);
    parts.push(title);
    if (r) {
      const facts = [
        ['Score', `${fmtNum(r.score ?? 0)} / 100`, 'ds-report-score'],
        ['Usable', r.usable ? 'yes' : 'no'],
        ['Rows', fmtInt(r.rows ?? 0)],
        ['Timeframe', r.timeframe || '—'],
        ['From', r.first_timestamp || '—'],
        ['To', r.last_timestamp || '—'],
        ['Sessions', r.expected_sessions ? `${fmtInt(r.sessions ?? 0)} of ${fmtInt(r.expected_sessions)}` : fmtInt(r.sessions ?? 0)],
        ['Prices', r.min_price !== undefined || r.max_price !== undefined ? `${fmtValue(r.min_price ?? 0)} – ${fmtValue(r.max_price ?? 0)}` : '—'],
      ];
      parts.push(el('dl', { class: 'ds-facts' }, ...facts.map(([k, v, testid]) => el('div', {},
        el('dt', { text: k }), el('dd', { class: 'num', text: v, dataset: testid ? { testid } : undefined })))));
      parts.push(this._findings(r.findings || []));
      if (r.passed?.length) parts.push(el('p', { class: 'hint', dataset: { testid: 'ds-passed' }, text: `Passed: ${r.passed.join(', ')}` }));
    } else parts.push(el('p', { class: 'muted', text: 'No quality report (built-in and server datasets have none).' }));
    if (head?.length || tail?.length) parts.push(this._preview(head || [], tail || []));
    this.report.replaceChildren(...parts);
    this.report.hidden = false;
    this.report.scrollIntoView({ block: 'nearest' });
  }

  _findings(findings) {
    if (!findings.length) return el('p', { class: 'muted', dataset: { testid: 'ds-findings' }, text: 'No findings.' });
    const head = el('tr', {}, ...['Severity', 'Check', 'Message', 'Rows', 'Count', 'Fix'].map((h) => el('th', { scope: 'col', text: h })));
    const rows = findings.map((f) => {
      const sev = severity(f.severity);
      const lines = (f.rows || []).slice(0, 10).join(', ') + ((f.rows || []).length > 10 ? ', …' : '');
      return el('tr', { class: `sev-${sev}`, dataset: { testid: 'ds-finding', check: f.check || '', severity: sev, column: f.column || '' } },
        el('td', {}, el('span', { class: `sev ${sev}`, text: sev })),
        el('td', { class: 'mono', text: f.check || '' }),
        el('td', { class: 'msg', text: f.message || '' },
          f.examples?.length ? el('div', { class: 'hint mono', text: f.examples.join(' · ') }) : null),
        el('td', { class: 'num', text: lines }),
        el('td', { class: 'num', text: fmtInt(f.count ?? 0) }),
        el('td', { class: 'msg', text: f.fix || '' }));
    });
    return el('div', { class: 'table-wrap' }, el('table', { class: 'ds-findings', dataset: { testid: 'ds-findings' } },
      el('thead', {}, head), el('tbody', {}, ...rows)));
  }

  _preview(head, tail) {
    const row = (c) => el('tr', {}, el('td', { class: 'mono', text: c.timestamp || '' }),
      ...['open', 'high', 'low', 'close', 'volume'].map((k) => el('td', { class: 'num', text: fmtValue(c[k] ?? 0) })));
    const gap = el('tr', { class: 'gap' }, el('td', { colspan: 6, class: 'muted', text: '…' }));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'ds-preview', dataset: { testid: 'ds-preview' } },
      el('thead', {}, el('tr', {}, ...['Timestamp', 'Open', 'High', 'Low', 'Close', 'Volume'].map((h, i) => el('th', { scope: 'col', class: i ? 'num' : '', text: h })))),
      el('tbody', {}, ...head.map(row), tail.length ? gap : null, ...tail.map(row))));
  }

  _clearReport() {
    this.report.hidden = true;
    this.report.replaceChildren();
    this.report.dataset.symbol = '';
    this.report.dataset.state = 'idle';
  }

  _status(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  _say(text, error = false) {
    this.message.textContent = text;
    this.message.classList.toggle('error', error);
  }

  // ---- the page -----------------------------------------------------------------------------

  _build() {
    const field = (id, label, input, hint) => [el('label', { for: id }, label, hint ? el('span', { class: 'hint', text: ` ${hint}` }) : null), input];
    this.file = el('input', { id: 'ds-file', type: 'file', accept: '.csv,.gz,.csv.gz,.parquet,text/csv,application/gzip',
      required: true, dataset: { testid: 'ds-file' } });
    this.symbol = el('input', { id: 'ds-symbol', spellcheck: 'false', autocomplete: 'off', autocapitalize: 'characters',
      required: true, placeholder: 'e.g. MYNIFTY', dataset: { testid: 'ds-symbol' } });
    this.calendar = el('input', { id: 'ds-calendar', spellcheck: 'false', autocomplete: 'off', placeholder: 'e.g. XBOM, 24/7',
      dataset: { testid: 'ds-calendar' } });
    this.timezone = el('input', { id: 'ds-timezone', spellcheck: 'false', autocomplete: 'off', placeholder: "default: the calendar's",
      dataset: { testid: 'ds-timezone' } });
    // A symbol from the file's name, when none is typed yet.
    this.file.addEventListener('change', () => {
      const f = this.file.files?.[0];
      if (f && !this.symbol.value.trim()) this.symbol.value = f.name.replace(/\.(csv(\.gz)?|gz|parquet)$/i, '').toUpperCase();
    });
    this.button = el('button', { type: 'submit', class: 'primary', dataset: { testid: 'ds-upload-button' } }, 'Upload');
    this.status = el('p', { class: 'form-status', role: 'status', 'aria-live': 'polite', dataset: { testid: 'ds-upload-status' } });
    this.form = el('form', { novalidate: true, dataset: { testid: 'ds-upload-form', state: 'idle' } },
      ...field('ds-file', 'File', this.file, '(CSV, CSV.gz or Parquet)'),
      ...field('ds-symbol', 'Symbol', this.symbol),
      el('div', { class: 'row2' },
        el('div', {}, ...field('ds-calendar', 'Calendar', this.calendar, '(optional)')),
        el('div', {}, ...field('ds-timezone', 'Timezone', this.timezone, '(optional)'))),
      el('div', { class: 'buttons' }, this.button),
      this.status);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    const side = el('aside', { class: 'sidebar' }, el('section', { class: 'panel', 'aria-labelledby': 'ds-upload-h' },
      el('h2', { id: 'ds-upload-h' }, 'Upload a dataset'),
      el('p', { class: 'hint', text: 'Bars with a timestamp (or date) and open, high, low, close and volume columns. '
        + 'Every quality check runs; a file with an error is refused and nothing is kept.' }),
      this.form));

    this.count = el('span', { class: 'count', dataset: { testid: 'ds-count' }, text: '0' });
    const refresh = el('button', { type: 'button', class: 'link', 'aria-label': 'Refresh the list of datasets',
      dataset: { testid: 'ds-refresh' }, onclick: () => this.refresh() }, '↻');
    this.body = el('tbody');
    this.list = el('table', { class: 'ds-list', dataset: { testid: 'ds-list', state: 'idle' } },
      el('thead', {}, el('tr', {}, ...['Symbol', 'Source', 'Timeframe', 'Dates', 'Bars', 'Quality', 'Stored', 'Calendar · zone', '']
        .map((h, i) => el('th', { scope: 'col', class: [4, 5, 6].includes(i) ? 'num' : '', text: h })))),
      this.body);
    this.message = el('div', { class: 'run-message', role: 'status', dataset: { testid: 'ds-message' } });
    this.report = el('section', { class: 'panel ds-report', 'aria-labelledby': 'ds-report-h', hidden: true,
      dataset: { testid: 'ds-report', state: 'idle', symbol: '' } });
    const main = el('main', { class: 'main', dataset: { testid: 'ds-main' } },
      el('section', { class: 'panel', 'aria-labelledby': 'ds-list-h' },
        el('h2', { id: 'ds-list-h' }, 'Datasets', this.count, refresh),
        el('div', { class: 'table-wrap' }, this.list), this.message),
      this.report);
    this.root.replaceChildren(side, main);
  }
}
