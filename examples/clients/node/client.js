#!/usr/bin/env node
// Example client of hindsight.v1.BacktestService in Node.js (@grpc/grpc-js + @grpc/proto-loader).
//
// It starts a backtest, streams its events, deliberately drops the connection midway (cancels the
// call and closes the channel), then opens a new channel and resumes with after_event_id = the
// last id it saw. Any UNAVAILABLE error is resumed the same way. At the end it prints one JSON line
// that says whether every event id 1..N arrived exactly once, and exits 0 only if so.
//
//   node client.js [--strategy FILE] [--symbol SIM-NIFTY] [--from 2024-01-01] [--to 2024-01-31]
//                  [--drop-after 50] [--batches 0] [--addr 127.0.0.1:50051]
//
// --batches N (N > 0) reads StreamBacktestBatches, N events per message at most, instead of
// StreamBacktest: the same events, far fewer messages (what bulk readers should use).
//
// Environment fallbacks: HINDSIGHT_GRPC_ADDR, HINDSIGHT_STRATEGY, HINDSIGHT_SYMBOL, HINDSIGHT_FROM,
// HINDSIGHT_TO, HINDSIGHT_DROP_AFTER, HINDSIGHT_BATCHES. Progress goes to stderr; stdout gets only the summary line.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TERMINAL = new Set(['backtest_completed', 'backtest_failed', 'backtest_cancelled']);
const REPO_PROTOS = path.resolve(__dirname, '..', '..', '..', 'protos');
// google/api/{annotations,http,httpbody,field_behavior}.proto, which our protos import.
const GOOGLE_PROTOS = path.dirname(require.resolve('google-proto-files/package.json'));

function options() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      addr: { type: 'string', default: env.HINDSIGHT_GRPC_ADDR || '127.0.0.1:50051' },
      strategy: {
        type: 'string',
        default: env.HINDSIGHT_STRATEGY || path.join(__dirname, '..', '..', 'strategies', 'rsi_reversion.json'),
      },
      symbol: { type: 'string', default: env.HINDSIGHT_SYMBOL || 'SIM-NIFTY' },
      from: { type: 'string', default: env.HINDSIGHT_FROM || '2024-01-01' },
      to: { type: 'string', default: env.HINDSIGHT_TO || '2024-01-31' },
      'drop-after': { type: 'string', default: env.HINDSIGHT_DROP_AFTER || '50' },
      batches: { type: 'string', default: env.HINDSIGHT_BATCHES || '0' },
    },
  });
  const dropAfter = Number.parseInt(values['drop-after'], 10);
  if (!Number.isInteger(dropAfter) || dropAfter < 0) throw new Error('--drop-after must be an integer >= 0');
  const batches = Number.parseInt(values.batches, 10);
  if (!Number.isInteger(batches) || batches < 0) throw new Error('--batches must be an integer >= 0');
  return { ...values, dropAfter, batches };
}

function loadService() {
  const definition = protoLoader.loadSync('hindsight/v1/backtest_service.proto', {
    includeDirs: [REPO_PROTOS, GOOGLE_PROTOS],
    keepCase: true, // snake_case field names, as in our JSON files
    longs: Number, // event ids are uint64; they fit a double for any realistic log
    enums: String,
    defaults: false,
    oneofs: true, // event.event names the oneof member that is set ("day_completed", ...)
  });
  return grpc.loadPackageDefinition(definition).hindsight.v1.BacktestService;
}

// Strategy files are proto3 JSON; proto3 JSON also accepts lowerCamelCase names. With keepCase the
// loader wants the proto's snake_case names (and would silently drop others), so normalise keys.
// Safe here: Strategy has no map fields, so every object key is a field name.
function snakeKeys(value) {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(
    ([k, v]) => [k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()), snakeKeys(v)]));
}

function newClient(Service, addr) {
  // A local subchannel pool: closing this client really closes its connection.
  return new Service(addr, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

// HINDSIGHT_TOKEN (an API key from `hindsight users add`, or a JWT) is sent as a bearer token;
// without it the engine must be in its local mode (no users configured, same machine).
function callMetadata() {
  const md = new grpc.Metadata();
  if (process.env.HINDSIGHT_TOKEN) md.set('authorization', `Bearer ${process.env.HINDSIGHT_TOKEN}`);
  return md;
}

function startBacktest(client, request) {
  return new Promise((resolve, reject) => {
    client.StartBacktest(request, callMetadata(), { deadline: Date.now() + 30_000 },
      (err, res) => (err ? reject(err) : resolve(res)));
  });
}

// Streams after `after` and calls onEvent for each event; onEvent returns true to drop the
// connection. With batches > 0 it reads StreamBacktestBatches (each message: { events: [...] }).
// Resolves to 'end' (the server ended the stream), 'dropped' or 'unavailable'; rejects on any
// other error.
function streamOnce(client, backtestId, after, onEvent, batches) {
  return new Promise((resolve, reject) => {
    let dropped = false;
    const call = batches > 0
      ? client.StreamBacktestBatches({ backtest_id: backtestId, after_event_id: after, max_events: batches },
        callMetadata())
      : client.StreamBacktest({ backtest_id: backtestId, after_event_id: after }, callMetadata());
    call.on('data', (message) => {
      for (const ev of batches > 0 ? message.events : [message]) {
        if (dropped) return; // events already received when we dropped: the resume sends them again
        if (onEvent(ev)) {
          dropped = true;
          call.cancel();
          resolve('dropped');
        }
      }
    });
    call.on('end', () => resolve('end'));
    call.on('error', (err) => {
      if (dropped) return; // our own cancel() surfaces as CANCELLED
      if (err.code === grpc.status.UNAVAILABLE) resolve('unavailable');
      else reject(err);
    });
  });
}

function describe(ev) {
  const kind = ev.event;
  const body = ev[kind] || {};
  switch (kind) {
    case 'day_completed':
      return `day ${body.day_number}/${body.total_days} ${body.date}: ${body.summary?.total_trades ?? 0} trades, ` +
        `pnl ${body.summary?.total_pnl ?? '0'}, equity ${body.equity}`;
    case 'backtest_completed':
      return `completed: ${body.overall_summary?.total_trades ?? 0} trades, pnl ${body.overall_summary?.total_pnl}, ` +
        `return ${body.metrics?.total_return_pct?.toFixed?.(2)} %`;
    case 'backtest_failed':
      return `failed: ${body.error_code} ${body.error_message}`;
    case 'backtest_cancelled':
      return `cancelled: ${body.reason}`;
    default:
      return null;
  }
}

async function main() {
  const opts = options();
  const Service = loadService();
  const strategy = snakeKeys(JSON.parse(fs.readFileSync(opts.strategy, 'utf8')));

  let client = newClient(Service, opts.addr);
  const started = await startBacktest(client, {
    strategy,
    strategy_id: path.basename(opts.strategy, '.json'),
    symbol: opts.symbol,
    start_date: opts.from,
    end_date: opts.to,
  });
  const backtestId = started.backtest_id;
  console.error(`started ${backtestId}: ${started.total_days} trading days on ${opts.symbol}, ${opts.from}..${opts.to}`);

  const ids = [];
  let lastId = 0;
  let terminal = null;
  let resumedAt = 0;
  let reconnects = 0;
  let dropped = false;
  let failures = 0; // consecutive connections that failed before delivering an event
  const onEvent = (ev) => {
    ids.push(ev.event_id);
    failures = 0;
    lastId = Math.max(lastId, ev.event_id);
    if (TERMINAL.has(ev.event)) terminal = ev.event;
    const line = describe(ev);
    if (line) console.error(`  #${ev.event_id} ${line}`);
    // The deliberate drop: once, after dropAfter events, unless the stream is already over.
    if (!dropped && opts.dropAfter > 0 && ids.length >= opts.dropAfter && !terminal) {
      dropped = true;
      return true;
    }
    return false;
  };

  for (;;) {
    const how = await streamOnce(client, backtestId, lastId, onEvent, opts.batches);
    if (terminal) break; // the server ends the stream after the terminal event
    client.close(); // drop the whole connection, not just the call
    reconnects += 1;
    if (how !== 'dropped') {
      // UNAVAILABLE (engine restarting, network blip), or a stream that ended early: back off.
      failures += 1;
      if (failures > 10) throw new Error(`giving up after ${failures} failed connections (${how})`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** failures)));
    }
    if (!resumedAt) resumedAt = lastId;
    console.error(`connection ${how} after event ${lastId}; reconnecting with after_event_id=${lastId}`);
    client = newClient(Service, opts.addr);
  }
  client.close();

  // Every id 1..max exactly once, in order.
  const unique = new Set(ids);
  const max = lastId;
  let lost = 0;
  for (let id = 1; id <= max; id += 1) if (!unique.has(id)) lost += 1;
  const repeated = ids.length - unique.size;
  const contiguous = ids.every((id, i) => id === i + 1);
  const summary = {
    backtest_id: backtestId,
    events: ids.length,
    resumed_at: resumedAt,
    reconnects,
    rpc: opts.batches > 0 ? 'StreamBacktestBatches' : 'StreamBacktest',
    lost,
    repeated,
    contiguous,
    terminal,
  };
  console.log(JSON.stringify(summary));
  return lost === 0 && repeated === 0 && contiguous && terminal !== null ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  const grpcError = typeof err.code === 'number' && err.details !== undefined;
  console.error(`error: ${grpcError ? `${grpc.status[err.code]}: ${err.details}` : err.message || err}`);
  process.exitCode = 2;
});
