// Saved strategies in the "New backtest" form (StrategyService over REST): a picker of the
// caller's strategies and their versions; Load puts a version in the JSON editor; Save keeps the
// editor's strategy as a new saved strategy (the id typed, or one made from its name); Save
// version adds a version to the loaded one (UpdateStrategy with expected_version, so a version
// someone saved meanwhile is never overwritten unseen). A run started from a loaded, unedited
// strategy references it (strategy_id + strategy_version); an edited one is sent inline.

import { ApiError, request } from './api.js';
import { $, el } from './dom.js';

const enc = encodeURIComponent;
const ABORTED = 10;

export const strategiesApi = {
  list: (token) => request('GET', `api/v1/strategies?page_size=500${token ? `&page_token=${enc(token)}` : ''}`),
  get: (id, version = 0) => request('GET', `api/v1/strategies/${enc(id)}${version ? `?version=${version}` : ''}`),
  versions: (id) => request('GET', `api/v1/strategies/${enc(id)}/versions`),
  create: (body) => request('POST', 'api/v1/strategies', body),
  update: (id, body) => request('PUT', `api/v1/strategies/${enc(id)}`, body),
};

// JSON with object keys sorted: two strategies are the same whatever their keys' order.
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const when = (ts) => (ts ? new Date(ts).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'short' }) : '');

export class SavedStrategies {
  // `form`: the RunForm (its editor, validate(), problems and status line).
  constructor(form) {
    this.form = form;
    this.loaded = null; // the SavedStrategy in the editor
    this.baseline = new Set(); // canonical forms of the editor's strategy that are that version, unedited
    this.select = $('f-saved');
    this.versionSelect = $('f-saved-version');
    this.idInput = $('f-saved-id');
    this.state = $('f-saved-state');
    this.loadBtn = $('f-load');
    this.saveBtn = $('f-save');
    this.saveVersionBtn = $('f-save-version');
    this.select.addEventListener('change', () => this._versions(this.select.value));
    this.loadBtn.addEventListener('click', () => this.load());
    this.saveBtn.addEventListener('click', () => this.save());
    this.saveVersionBtn.addEventListener('click', () => this.saveVersion());
    form.json.addEventListener('input', () => this._showState());
    this._showState();
  }

  // The caller's strategies, most recently updated first, into the picker.
  async refresh(selected = this.select.value, version = 0) {
    const all = [];
    try {
      let token = '';
      do {
        const page = await strategiesApi.list(token);
        all.push(...(page.strategies || []));
        token = page.next_page_token || '';
      } while (token);
    } catch (err) {
      this._note(`Could not list saved strategies: ${err.message}`, true);
      return;
    }
    this.select.replaceChildren(
      el('option', { value: '', text: all.length ? '(choose a saved strategy)' : '(none saved yet)' }),
      ...all.map((s) => el('option', { value: s.strategy_id, text: s.strategy_id,
        title: [s.strategy?.name, s.description].filter(Boolean).join(' · ') })));
    this.select.value = all.some((s) => s.strategy_id === selected) ? selected : '';
    this.select.dataset.count = String(all.length);
    // Deleted meanwhile, or another user signed in: the editor no longer shows a saved strategy.
    if (this.loaded && !all.some((s) => s.strategy_id === this.loaded.strategy_id)) this.forget();
    await this._versions(this.select.value, version);
  }

  async _versions(id, chosen = 0) {
    this.versionSelect.replaceChildren();
    this.loadBtn.disabled = !id;
    if (id) {
      try {
        const versions = (await strategiesApi.versions(id)).versions || [];
        this.versionSelect.replaceChildren(...versions.map((v, i) => el('option', {
          value: String(v.version), text: `v${v.version}${i === 0 ? ' (latest)' : ''}`,
          title: [when(v.created_at), v.description].filter(Boolean).join(' · ') })));
        if (chosen && versions.some((v) => v.version === chosen)) this.versionSelect.value = String(chosen);
      } catch (err) {
        this._note(`Could not list the versions of ${id}: ${err.message}`, true);
      }
    }
    this.versionSelect.disabled = !id;
  }

  // Load: the chosen version into the editor.
  async load() {
    const id = this.select.value;
    if (!id) return;
    try {
      const saved = await strategiesApi.get(id, Number(this.versionSelect.value || 0));
      this.form.useStrategy(saved.strategy, '');
      this._remember(saved);
      this.form._say(`Loaded ${saved.strategy_id} v${saved.version}`);
    } catch (err) {
      this._failed(err);
    }
  }

  // Save: a new saved strategy (the id typed, or the default made from its name).
  async save() {
    const strategy = await this.form.validate();
    if (!strategy) return;
    const id = this.idInput.value.trim();
    this.saveBtn.disabled = true;
    try {
      const saved = await strategiesApi.create(id ? { strategy_id: id, strategy } : { strategy });
      this.idInput.value = '';
      await this.refresh(saved.strategy_id, saved.version);
      this._remember(saved, strategy);
      this.form._say(`Saved as ${saved.strategy_id} v${saved.version}`);
    } catch (err) {
      this._failed(err);
    } finally {
      this.saveBtn.disabled = false;
      this._showState();
    }
  }

  // Save version: the editor's strategy as the loaded strategy's next version, only if nobody
  // saved one since it was loaded (expected_version).
  async saveVersion() {
    const from = this.loaded;
    if (!from) return;
    const strategy = await this.form.validate();
    if (!strategy) return;
    this.saveVersionBtn.disabled = true;
    try {
      const saved = await strategiesApi.update(from.strategy_id, { strategy, expected_version: from.latest_version });
      await this.refresh(saved.strategy_id, saved.version);
      this._remember(saved, strategy);
      this.form._say(saved.version === from.latest_version ? `No changes: ${saved.strategy_id} is still v${saved.version}`
        : `Saved ${saved.strategy_id} v${saved.version}`);
    } catch (err) {
      if (err instanceof ApiError && err.body?.code === ABORTED) {
        const latest = (err.body.details || []).map((d) => d.metadata?.latest_version).find(Boolean);
        this.form._say(`Not saved: someone saved a newer version of ${from.strategy_id}${latest ? ` (v${latest})` : ''} `
          + `since you loaded v${from.version}. Load the latest to see it, or Save your edit as a new strategy.`, true);
        this.form.status.dataset.conflict = 'true';
        await this.refresh(from.strategy_id);
      } else this._failed(err);
    } finally {
      this._showState();
    }
  }

  // {strategy_id, strategy_version} when the editor holds a loaded version, unedited; else null.
  reference() {
    if (!this.loaded || this.edited()) return null;
    return { strategy_id: this.loaded.strategy_id, strategy_version: this.loaded.version };
  }

  edited() {
    if (!this.loaded) return true;
    try {
      return !this.baseline.has(canonical(JSON.parse(this.form.json.value)));
    } catch {
      return true;
    }
  }

  // The editor no longer shows a saved strategy (an example was chosen).
  forget() {
    this.loaded = null;
    this.baseline = new Set();
    this._showState();
  }

  _remember(saved, sent = null) {
    this.loaded = saved;
    // The server's JSON writes every field at its default; what was sent (without them) is that version too.
    this.baseline = new Set([canonical(saved.strategy || {}), ...(sent ? [canonical(sent)] : [])]);
    delete this.form.status.dataset.conflict;
    this._showState();
  }

  _failed(err) {
    // Problems of the strategy come as strategy.<field>: shown as ValidateStrategy's are.
    if (err instanceof ApiError && err.violations.length) {
      this.form._showProblems(err.violations.map((v) => ({ ...v,
        field: v.field === 'strategy' ? '' : String(v.field || '').replace(/^strategy\./, '') })));
    }
    this.form._say(err.message, true);
  }

  _note(text, error = false) {
    this.state.textContent = text;
    this.state.classList.toggle('error', error);
  }

  _showState() {
    const s = this.loaded;
    const edited = this.edited();
    this.saveVersionBtn.disabled = !s;
    this.state.dataset.state = !s ? 'none' : edited ? 'edited' : 'loaded';
    this.state.dataset.strategyId = s ? s.strategy_id : '';
    this.state.dataset.version = s ? String(s.version) : '';
    if (!s) this._note('');
    else if (edited) this._note(`Edited from ${s.strategy_id} v${s.version}: Start sends it as it is; Save version adds a version`);
    else this._note(`${s.strategy_id} v${s.version}${s.version === s.latest_version ? '' : ` (latest v${s.latest_version})`}: Start runs the saved version`);
  }
}
