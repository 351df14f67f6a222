// The "New backtest" form: an example strategy, a saved one (saved.js) or edited JSON, symbol,
// dates, capital. Start validates first (POST /strategies:validate) and lists the problems by
// field; a loaded saved strategy, unedited, is run by reference instead.

import { api, ApiError } from './api.js';
import { $, el } from './dom.js';
import { SavedStrategies } from './saved.js';

export class RunForm {
  constructor(onStarted) {
    this.onStarted = onStarted;
    this.examples = [];
    this.form = $('run-form');
    this.example = $('f-example');
    this.json = $('f-strategy');
    this.problems = $('f-problems');
    this.status = $('f-status');
    this.startBtn = $('f-start-btn');
    this.saved = new SavedStrategies(this);
    this.example.addEventListener('change', () => this._useExample(this.example.value));
    $('f-symbol').addEventListener('change', () => this._useDataset());
    this.json.addEventListener('input', () => this._clearProblems());
    $('f-validate').addEventListener('click', () => this.validate());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
  }

  async load() {
    const saved = this.saved.refresh();
    const [examples] = await Promise.allSettled([api.examples(), this.loadDatasets()]);
    this.examples = examples.status === 'fulfilled' ? examples.value.strategies || [] : [];
    this.example.replaceChildren(...this.examples.map((x) => el('option', { value: x.file, text: x.name })),
      el('option', { value: '', text: '(your own JSON)' }));
    const preferred = this.examples.find((x) => x.file === 'rsi_reversion.json') || this.examples[0];
    if (preferred) {
      this.example.value = preferred.file;
      this._useExample(preferred.file);
    } else this.example.value = '';
    await saved;
  }

  // The symbol list (GET /datasets), again after an upload or a delete (the Datasets view): the
  // symbol chosen stays chosen while it is still there.
  async loadDatasets() {
    const select = $('f-symbol');
    const chosen = select.value;
    let list;
    try {
      list = (await api.datasets()).datasets || [];
    } catch (err) {
      this._say(`Could not list datasets: ${err.message}`, true);
      return;
    }
    this.datasets = new Map(list.map((d) => [d.symbol, d]));
    select.replaceChildren(...list.map((d) => el('option', { value: d.symbol, text: d.symbol, title: d.description })));
    if (this.datasets.has(chosen)) select.value = chosen;
    else this._useDataset();
  }

  _useExample(file) {
    const x = this.examples.find((e) => e.file === file);
    if (!x) return;
    this.useStrategy(x.strategy);
    this.saved.forget();
  }

  // A strategy into the editor (and its capital into the form).
  useStrategy(strategy, example = this.example.value) {
    this.example.value = example;
    this.json.value = JSON.stringify(strategy, null, 2);
    const cap = strategy?.execution?.initial_capital;
    if (cap) $('f-capital').value = cap;
    this._clearProblems();
  }

  // Default to the dataset's last full calendar year (or all of it, when shorter).
  _useDataset() {
    const d = this.datasets?.get($('f-symbol').value);
    if (!d) return;
    for (const id of ['f-start', 'f-end']) {
      $(id).min = d.first_date || '';
      $(id).max = d.last_date || '';
    }
    if (d.last_date) {
      const year = Number(d.last_date.slice(0, 4)) - (d.last_date.endsWith('-12-31') ? 0 : 1);
      const start = `${year}-01-01` > d.first_date ? `${year}-01-01` : d.first_date;
      $('f-start').value = start;
      $('f-end').value = `${year}-12-31` < d.last_date ? `${year}-12-31` : d.last_date;
    }
  }

  _strategy() {
    try {
      const value = JSON.parse(this.json.value);
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('a strategy is a JSON object');
      return value;
    } catch (err) {
      this._showProblems([{ field: 'JSON', description: err.message }]);
      return null;
    }
  }

  async validate() {
    const strategy = this._strategy();
    if (!strategy) return null;
    this._say('Validating…');
    try {
      const res = await api.validate(strategy);
      if (!res.valid) {
        this._showProblems(res.problems || []);
        this._say(`${(res.problems || []).length} problem(s) in the strategy`, true);
        return null;
      }
      this._clearProblems();
      this._say(`Valid · warm-up ${res.warmup_bars || 0} bars`);
      return strategy;
    } catch (err) {
      this._apiProblem(err);
      return null;
    }
  }

  async start() {
    this.startBtn.disabled = true;
    try {
      // A loaded saved strategy, unedited: the run references it (strategy_id + strategy_version).
      const ref = this.saved.reference();
      const strategy = ref ? null : await this.validate();
      if (!ref && !strategy) return;
      const tick = Number($('f-tick').value || 0);
      const req = {
        ...(ref || {
          strategy,
          strategy_id: this.example.value ? this.example.value.replace(/\.json$/, '') : slug(strategy.name),
        }),
        symbol: $('f-symbol').value,
        start_date: $('f-start').value,
        end_date: $('f-end').value,
        initial_capital: Number($('f-capital').value || 0),
        tick_interval: Number.isFinite(tick) ? Math.max(0, Math.floor(tick)) : 0,
      };
      this._say('Starting…');
      const res = await api.start(req);
      this._say(`Started ${res.backtest_id} (${res.total_days} days)`);
      this.onStarted(res.backtest_id);
    } catch (err) {
      this._apiProblem(err);
    } finally {
      this.startBtn.disabled = false;
    }
  }

  _apiProblem(err) {
    if (err instanceof ApiError && err.violations.length) this._showProblems(err.violations);
    this._say(err.message, true);
  }

  _showProblems(problems) {
    this.problems.replaceChildren(...problems.map((p) => el('li', { dataset: { testid: 'strategy-problem', field: p.field } },
      el('code', { text: p.field || '(strategy)' }), ': ', p.description || '')));
    this.problems.hidden = !problems.length;
    this.json.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
  }

  _clearProblems() {
    this._showProblems([]);
  }

  _say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }
}

const slug = (name) => String(name || 'strategy').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'strategy';
