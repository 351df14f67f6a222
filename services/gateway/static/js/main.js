// The dashboard: start or open a backtest, follow its event stream, draw it once per frame.
//
// Events only update the RunState (cheap); the DOM and the charts are updated in one
// requestAnimationFrame callback from the changes collected since the last one (at most every
// LIVE_FRAME_MS while a run streams in), so the page keeps up with tens of thousands of events a
// second.

import { AnalyticsView } from './analytics.js';
import { api, onUnauthorized } from './api.js';
import { Calendar } from './calendar.js';
import { MetricCards } from './cards.js';
import { Charts, chartsAvailable, MISSING_MESSAGE } from './charts.js';
import { compareHash, CompareView } from './compare.js';
import { DatasetsView } from './datasets.js';
import { Diagnostics } from './diagnostics.js';
import { $, dateOf, el, fmtDuration, fmtMoney, fmtSigned, signClass, statusName, timeOfDay } from './dom.js';
import { RunForm } from './form.js';
import { OptimizeView } from './optimize.js';
import { RunState } from './run.js';
import { RunsList } from './runs.js';
import { Session } from './session.js';
import { BacktestStream } from './stream.js';
import { TradesTable } from './trades.js';

const charts = new Charts({ equity: $('chart-equity'), drawdown: $('chart-drawdown'), daily: $('chart-daily') });
const cards = new MetricCards($('cards'));
const calendar = new Calendar($('calendar'), (date) => selectDay(date));
const trades = new TradesTable($('trades-body'), $('trades-count'), $('trades-filter'), (t) => selectTrade(t));
const diagnostics = new Diagnostics($('diagnostics'));
const runs = new RunsList($('runs'), (id) => openRun(id));
const form = new RunForm((id) => {
  runTab = 'run'; // a new run streams in: its run tab
  openRun(id);
  showTab('run');
  runs.refresh();
});

const optimize = new OptimizeView({
  // A trial opened as a backtest: the backtest view, through the address (#bt=<id>).
  onOpenBacktest: (id) => go(`#bt=${encodeURIComponent(id)}`),
  onOpened: (id) => {
    if (location.hash !== `#opt=${encodeURIComponent(id)}`) history.replaceState(null, '', `#opt=${encodeURIComponent(id)}`);
  },
});

// The run's Analytics tab (#bt=<id>/analytics) and the Compare view (#compare=<id>,<id>).
const analytics = new AnalyticsView($('analytics'), { onOpenTrade: (t) => openTrade(t) });
const compare = new CompareView($('cmp-app'), {
  onOpenBacktest: (id) => go(runHash(id, 'run')),
  onCompare: (ids) => go(compareHash(ids)),
});
// The Datasets view (#datasets): an upload or a delete has the forms' symbol lists loaded again.
const datasets = new DatasetsView($('ds-app'), {
  onChanged: () => {
    form.loadDatasets();
    optimize.loadDatasets(true);
  },
});
const FINISHED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const runHash = (id, tab = runTab) => `#bt=${encodeURIComponent(id)}${tab === 'analytics' ? '/analytics' : ''}`;
let runTab = 'run';

let run = null;
let stream = null;
let frame = 0;
let finalized = false;

function banner(text) {
  $('banner').textContent = text;
  $('banner').hidden = !text;
}

function setConnection(state, detail = '') {
  const pill = $('conn');
  pill.dataset.state = state;
  pill.textContent = detail ? `${state}: ${detail}` : state;
}

export function openRun(id) {
  if (stream) stream.dispose();
  if (frame) cancelAnimationFrame(frame);
  clearTimeout(frameTimer);
  frame = frameTimer = 0;
  finalized = false;
  run = new RunState(id);
  charts.reset();
  calendar.reset();
  trades.reset();
  diagnostics.reset();
  $('day-panel').hidden = true;
  $('run-zip').hidden = true;
  $('cancel-btn').hidden = false;
  $('run-message').textContent = '';
  $('run-message').classList.remove('error');
  $('run-title').textContent = id;
  runs.mark(id);
  analytics.setRun(id);
  if (location.hash !== runHash(id)) history.replaceState(null, '', runHash(id));
  const mine = run;
  api.get(id).then((bt) => {
    if (run !== mine) return;
    if (!run.config) run.config = bt.config;
    title(bt.config);
    // Over already (an earlier run): its analytics need not wait for the replay.
    if (FINISHED.has(statusName(bt.status))) analytics.setFinished(true);
  }).catch((err) => {
    if (run !== mine || err.status !== 404) return;
    fail(`Backtest ${id} not found (expired or deleted).`);
    analytics.setFinished(true); // nothing to wait for: the Analytics tab asks, and says so too
  });
  stream = new BacktestStream(api.streamUrl(id), {
    onEvent: (kind, _id, ev) => {
      mine.apply(kind, ev);
      if (kind === 'backtest_started') title(mine.config);
      schedule();
    },
    onState: (state, detail) => setConnection(state, detail),
    recover: (lastId) => recover(mine, lastId),
  });
  const reader = stream;
  mine.nodeEventSource = (ids) => reader.nodeEvents(ids);
  stream.start(0);
  render();
}

// The browser gave up on the stream: stop when the run is over and nothing is missing, else retry.
async function recover(mine, lastId) {
  let bt;
  try {
    bt = await api.get(mine.id);
  } catch (err) {
    if (err.status === 404) {
      fail(`Backtest ${mine.id} not found (expired or deleted).`);
      return 'stop';
    }
    if (err.status === 401) return 'stop'; // signed out: the sign-in form is showing, the run reopens after
    return 'retry';
  }
  const status = statusName(bt.status);
  if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(status) && lastId >= Number(bt.last_event_id || 0)) {
    mine.applyFinal(bt);
    schedule();
    return 'stop';
  }
  return 'retry';
}

function fail(message) {
  if (stream) stream.close('error');
  $('run-message').textContent = message;
  $('run-message').classList.add('error');
}

function title(config) {
  if (!config) return;
  $('run-title').textContent = `${config.strategy?.name || config.strategy_id || ''} · ${config.symbol} · `
    + `${config.start_date || '…'} → ${config.end_date || '…'} · ${run.id}`;
}

// While a run streams in, the page is drawn at most every LIVE_FRAME_MS, and no more often than
// keeps drawing (script, style, layout and paint together) under a fifth of the main thread's
// time: each frame re-lays out and repaints what changed (cards, table, calendar, progress), and
// thousands of events a second would otherwise buy a frame each. Once the run is over, at once.
const LIVE_FRAME_MS = 100;
const MAX_LIVE_FRAME_MS = 1000;
let frameTimer = 0;
let lastFrame = 0;
let frameCost = 0; // ms from the last frame's start to the first task after it (its rendering included)
let chartTimer = 0;

function schedule() {
  if (frame) return;
  if (run?.finished) {
    clearTimeout(frameTimer);
    frameTimer = 0;
  }
  if (frameTimer) return;
  const every = Math.min(MAX_LIVE_FRAME_MS, Math.max(LIVE_FRAME_MS, 5 * frameCost));
  const wait = run && !run.finished ? lastFrame + every - performance.now() : 0;
  if (wait > 0) frameTimer = setTimeout(() => { frameTimer = 0; frame = requestAnimationFrame(render); }, wait);
  else frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const start = performance.now();
  lastFrame = start;
  setTimeout(() => { frameCost = performance.now() - start; }, 0);
  if (!run) return;
  const c = run.drain();
  trades.append(c.trades);
  if (c.days.size) calendar.update(run.days, c.days);
  charts.append(c.equity, c.daily);
  const drawn = charts.draw(run.finished);
  if (!drawn && !chartTimer) {
    // Points are still waiting to be drawn: come back for them even if no event arrives.
    chartTimer = setTimeout(() => { chartTimer = 0; schedule(); }, run.finished ? 0 : 100);
  }
  progress();
  ticker();
  // Final (the cards say so, data-final) once the run is over and every chart holds all of it.
  const final = run.finished && drawn;
  cards.update(run, final);
  if (run.finished) analytics.setFinished(true);
  if (final && !finalized) finish();
}

function progress() {
  const total = run.totalDays || 0;
  const done = run.completedDays || 0;
  const pct = total ? Math.min(100, (done / total) * 100) : 0;
  $('progress-fill').style.transform = `scaleX(${pct / 100})`;
  $('progress').setAttribute('aria-valuenow', pct.toFixed(0));
  $('progress-text').textContent = total ? `${done} / ${total} days · ${pct.toFixed(0)} %` : statusName(run.status).toLowerCase();
  let eta = '';
  if (run.finished) eta = statusName(run.status).toLowerCase();
  else if (done > 0 && run.firstEventAt) {
    const elapsed = (performance.now() - run.firstEventAt) / 1000;
    eta = `ETA ${fmtDuration((elapsed / done) * (total - done))}`;
  } else if (run.currentDate) eta = 'estimating…';
  $('eta').textContent = eta;
}

function ticker() {
  const t = run.tick;
  const s = t?.pnl_summary || run.summary;
  const parts = [];
  const date = t?.date || run.currentDate;
  if (date) parts.push(['', `${date}${t?.timestamp ? ` ${timeOfDay(t.timestamp)}` : ''}`]);
  if (t?.ltp) parts.push(['LTP ', fmtMoney(t.ltp)]);
  if (t) parts.push(['open ', String(t.open_positions?.length || 0)]);
  if (s?.unrealized_pnl !== undefined && t) parts.push(['unrealized ', fmtSigned(s.unrealized_pnl)]);
  if (s?.realized_pnl !== undefined) parts.push(['realized ', fmtSigned(s.realized_pnl)]);
  if (s?.equity) parts.push(['equity ', fmtMoney(s.equity)]);
  if (stream) parts.push(['events ', String(stream.stats.events)]);
  $('ticker').replaceChildren(...parts.flatMap(([k, v], i) => [i ? ' · ' : '', k, el('b', { text: v })]));
}

function finish() {
  finalized = true;
  charts.fit();
  $('cancel-btn').hidden = true;
  $('run-zip').href = api.runZipUrl(run.id);
  $('run-zip').setAttribute('download', `${run.id}.zip`);
  $('run-zip').hidden = run.status !== 'COMPLETED' && run.status !== 'CANCELLED';
  if (run.message) {
    $('run-message').textContent = run.message;
    $('run-message').classList.toggle('error', run.status === 'FAILED');
  }
  runs.refresh();
}

function selectDay(date) {
  calendar.select(date);
  trades.setFilter(date);
  const panel = $('day-panel');
  const day = date && run?.days.get(date);
  if (!day) {
    panel.hidden = true;
    return;
  }
  panel.replaceChildren(
    el('strong', { text: date }),
    el('span', { class: signClass(day.pnl), text: `P&L ${fmtSigned(day.pnl)}` }),
    el('span', { text: `${day.trades} trades (${day.wins || 0} won, ${day.losses || 0} lost)` }),
    day.status === 'done' ? el('a', { class: 'button', href: api.dayZipUrl(run.id, date), download: `${run.id}-${date}.zip`,
      dataset: { testid: 'day-zip' } }, 'Day ZIP') : el('span', { class: 'muted', text: 'running…' }),
    el('button', { type: 'button', class: 'link', onclick: () => selectDay(null) }, 'show all'));
  panel.hidden = false;
}

function selectTrade(trade) {
  if (!trade || !run) return;
  trades.select(trade);
  diagnostics.show(run, trade);
  $('diagnostics').closest('section').scrollIntoView({ block: 'nearest' });
}

// A trade picked in the Analytics tab (a TradePoint: a trade, or an option position): the run
// tab, the day it closed, and the trade with its diagnostics.
function openTrade(t) {
  if (!run) return;
  go(runHash(run.id, 'run'));
  showTab('run');
  selectDay(dateOf(t.exit_time || t.entry_time));
  const trade = run.trades.find((x) => x.trade_id === t.trade_id) || run.trades.find((x) => x.position_id === t.trade_id);
  if (trade) selectTrade(trade);
  else $('calendar').closest('section').scrollIntoView({ block: 'nearest' });
}

// The run's tabs: Run (all of the above) and Analytics.
function showTab(tab) {
  runTab = tab;
  $('main').dataset.tab = tab;
  for (const b of document.querySelectorAll('#run-tabs [data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  analytics.show(signedIn && view === 'backtests' && tab === 'analytics');
}

for (const b of document.querySelectorAll('#run-tabs [data-tab]')) {
  b.addEventListener('click', () => {
    if (run) go(runHash(run.id, b.dataset.tab));
    else showTab(b.dataset.tab);
  });
}

$('cancel-btn').addEventListener('click', async () => {
  if (!run || run.finished) return;
  try {
    await api.cancel(run.id);
  } catch (err) {
    $('run-message').textContent = `Cancel failed: ${err.message}`;
  }
});
$('runs-refresh').addEventListener('click', () => runs.refresh());

// For the browser tests and for people poking at a run from the console.
window.hindsight = {
  get run() { return run; },
  get stream() { return stream; },
  trades,
  charts,
  openRun,
  optimize,
  analytics,
  compare,
  datasets,
  get view() { return view; },
};

// ---- views: Backtests (#bt=<id>, #bt=<id>/analytics), Optimize (#optimize, #opt=<id>),
// Compare (#compare, #compare=<id>,<id>…) and Datasets (#datasets), chosen by the address ----

let view = 'backtests';
let signedIn = false;

function showView(name) {
  view = name;
  for (const b of document.querySelectorAll('#views [data-view]')) b.setAttribute('aria-current', b.dataset.view === name ? 'page' : 'false');
  if (!signedIn) return;
  $('app').hidden = name !== 'backtests';
  $('opt-app').hidden = name !== 'optimize';
  $('cmp-app').hidden = name !== 'compare';
  $('ds-app').hidden = name !== 'datasets';
  // The top bar's title and connection are the backtest's.
  $('run-title').hidden = name !== 'backtests';
  $('conn').hidden = name !== 'backtests';
  if (name !== 'backtests') analytics.show(false); // else route() shows the run's tab
  if (name === 'optimize') optimize.show();
  if (name === 'compare') compare.show(run?.finished ? run.id : null);
  if (name === 'datasets') datasets.show();
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash; // → hashchange → route()
}

function route() {
  if (!signedIn) return;
  const bt = /^#bt=([^/]+)(\/analytics)?$/.exec(location.hash);
  const opt = /^#opt=(.+)$/.exec(location.hash);
  const cmp = /^#compare(?:=(.*))?$/.exec(location.hash);
  if (opt) {
    showView('optimize');
    const id = decodeURIComponent(opt[1]);
    if (optimize.state?.id !== id) optimize.open(id);
  } else if (location.hash === '#optimize') showView('optimize');
  else if (location.hash === '#datasets') showView('datasets');
  else if (cmp) {
    showView('compare');
    if (cmp[1]) compare.open(cmp[1].split(',').filter(Boolean).map(decodeURIComponent));
  } else {
    runTab = bt?.[2] ? 'analytics' : 'run';
    showView('backtests');
    const id = bt && decodeURIComponent(bt[1]);
    // A run already open stays as it is (switching views back and forth replays nothing).
    if (id && (run?.id !== id || !stream || (stream.closed && !run.finished))) openRun(id);
    showTab(runTab);
  }
}

window.addEventListener('hashchange', route);
for (const b of document.querySelectorAll('#views [data-view]')) {
  b.addEventListener('click', () => {
    if (b.dataset.view === 'optimize') go(optimize.state ? `#opt=${encodeURIComponent(optimize.state.id)}` : '#optimize');
    else if (b.dataset.view === 'compare') go(compare.hash);
    else if (b.dataset.view === 'datasets') go('#datasets');
    else go(run ? runHash(run.id) : '#backtests');
  });
}

// Signed in (or local mode): show the app; the first time, load the form; (re)open the run in
// the address (#bt=<id>) unless it is already streaming.
let loaded = false;

function enterApp() {
  signedIn = true;
  $('views').hidden = false;
  if (!loaded) {
    loaded = true;
    form.load();
  } else {
    // The saved strategies and uploaded datasets are the caller's: maybe another user's now.
    form.saved.refresh();
    form.loadDatasets();
    optimize.loadDatasets(true);
  }
  runs.refresh();
  route();
}

// Signed out (a 401: no session yet, or the key was revoked): the form instead of the app, and
// no stream left reading.
function leaveApp() {
  signedIn = false;
  if (stream) stream.dispose();
  optimize.stop();
  analytics.show(false);
  $('app').hidden = true;
  $('opt-app').hidden = true;
  $('cmp-app').hidden = true;
  $('ds-app').hidden = true;
  $('views').hidden = true;
}

const session = new Session({ signedIn: enterApp, signedOut: leaveApp });
onUnauthorized((err) => session.expired(err));
window.hindsight.session = session;

if (!chartsAvailable) banner(MISSING_MESSAGE);
session.start().finally(() => {
  document.body.dataset.ready = 'true';
});
