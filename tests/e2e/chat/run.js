'use strict';
// run.js: runs one chat scenario against weft's WebSocket chat service and prints what every
// client saw, as JSON, for tests/e2e/test_chat.py to judge.
//
//   node chat/run.js SCENARIO_JSON        (cwd tests/e2e, so that require('ws') resolves)
//
// SCENARIO: {"base": "ws://127.0.0.1:PORT", "timeout": MS, "steps": [STEP, ...]}
// Clients are either real ones, Node's `ws` package (kind "ws", the default), or raw sockets
// that do the handshake and framing themselves (kind "raw", see wire.js). Steps run in order:
//   {"op":"open", "id":"a", "kind":"ws"|"raw", "path":"/ws", "query":"room=r&name=n",
//    "headers":{...}, "origin":"...", "require":true, "timeout":MS, "pause":false}
//       connects and waits until the handshake ends (opened, refused or failed); "require":
//       false lets a refusal pass (the events tell what happened)
//   {"op":"send", "id":"a", "json":{...}} or "text":"..."          one text message
//   {"op":"burst", "id":"a", "count":N, "prefix":"m"}    N messages {"type":"msg","text":"m:I"}
//   {"op":"stream", "id":"a", "count":N, "size":BYTES, "prefix":"s", "window":W,
//    "watch":["a","b"], "timeout":MS}
//       N messages "s:I:padding", sending message I only once every watched client has had
//       message I-W: a sender that never outruns the clients it watches
//   {"op":"frames", "id":"r", "frames":[{"opcode":1, "fin":true, "rsv":0, "mask":true,
//    "text":"..."|"hex":"..."|"json":{...}|"fill":{"byte":97,"count":2048}, "delay":MS}]}
//       raw frames (raw clients only)
//   {"op":"ping", "id":"a", "hex":"..."}                  a ping frame
//   {"op":"close", "id":"a", "code":1000}                 a close frame
//   {"op":"terminate", "id":"a"}                          drops the TCP connection
//   {"op":"pause"|"resume", "id":"a"}                     stops / restarts reading the socket
//   {"op":"wait", "id":"a"|["a","b"], "match":PATTERN|[PATTERN,...], "count":1, "timeout":MS}
//       waits until each client has had at least count events matching the pattern (or one of
//       the patterns); a pattern is a subset of an event: {"ev":"msg","data":{"type":"joined"}}
//   {"op":"sleep", "ms":MS}
//   {"op":"checkpoint", "name":"x"}   prints {"checkpoint":"x"} and waits for a line on stdin
//   {"op":"kill", "pid":PID, "signal":"SIGTERM"}
// A step that fails (a wait or open that times out, a bad step) ends the scenario.
//
// Events, per client, in order: {"ev":"http","status","headers"} (the handshake answer),
// {"ev":"open"}, {"ev":"msg","data":OBJECT|null,"text"?,"at":MS_EPOCH} (a text message, its JSON
// in data; text only when it is not JSON; long texts cut to 64 characters with text_len and
// text_sha256), {"ev":"binary","hex"}, {"ev":"ping"|"pong","hex"}, {"ev":"close","code","reason"},
// {"ev":"error","message"}, {"ev":"end"}, {"ev":"violation","message"} (raw: the server broke the
// protocol).
//
// Output: the last stdout line, {"result": {"ok", "error", "steps":[...], "clients":{id:{kind,
// events}}}}. It always exits, within the scenario's timeout (default 30 s) and whatever weft does.

const crypto = require('crypto');
const readline = require('readline');
const { RawClient, OP } = require('./wire');

let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  process.stdout.write(JSON.stringify({ result: { ok: false, error: `cannot load ws (run scripts/npm-deps.sh): ${e.message}`, steps: [], clients: {} } }) + '\n');
  process.exit(2);
}

const scenario = JSON.parse(process.argv[2] || '{}');
const started = Date.now();
const clients = {};  // id -> {kind, events, seen: {prefix: count}, conn}
const waiters = new Set();
const steps = [];
let finished = false;

// ---- events ----

const TEXT_CUT = 64;

function textEvent(str) {
  const ev = { ev: 'msg', data: null, at: Date.now() };
  let data = null;
  try {
    data = JSON.parse(str);
  } catch (e) {
    ev.text = str;
  }
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    if (typeof data.text === 'string' && data.text.length > TEXT_CUT * 2) {
      data.text_len = data.text.length;
      data.text_sha256 = crypto.createHash('sha256').update(data.text).digest('hex');
      data.text = data.text.slice(0, TEXT_CUT);
    }
    ev.data = data;
  } else if (data !== null) {
    ev.data = data;
  }
  if (ev.text !== undefined && ev.text.length > TEXT_CUT * 2) {
    ev.text_len = ev.text.length;
    ev.text = ev.text.slice(0, TEXT_CUT);
  }
  return ev;
}

function push(c, ev) {
  c.events.push(ev);
  if (ev.ev === 'msg' && ev.data && ev.data.type === 'msg' && typeof ev.data.text === 'string') {
    const m = /^([A-Za-z]+):(\d+)/.exec(ev.data.text);
    if (m) c.seen[m[1]] = (c.seen[m[1]] || 0) + 1;
  }
  for (const w of waiters) w.check();
}

function matches(value, pattern) {
  if (pattern === null || typeof pattern !== 'object') return value === pattern;
  if (Array.isArray(pattern)) {
    if (!Array.isArray(value) || value.length !== pattern.length) return false;
    return pattern.every((p, i) => matches(value[i], p));
  }
  if (value === null || typeof value !== 'object') return false;
  return Object.keys(pattern).every((k) => matches(value[k], pattern[k]));
}

// Resolves when check() says done, rejects on timeout with describe()'s text.
function waitFor(check, timeoutMs, describe) {
  return new Promise((resolve, reject) => {
    const w = {
      check() {
        let done;
        try {
          done = check();
        } catch (e) {
          waiters.delete(w);
          clearTimeout(w.timer);
          reject(e);
          return;
        }
        if (done) {
          waiters.delete(w);
          clearTimeout(w.timer);
          resolve();
        }
      },
    };
    w.timer = setTimeout(() => {
      waiters.delete(w);
      reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`));
    }, timeoutMs);
    waiters.add(w);
    w.check();
  });
}

// ---- clients ----

function client(id) {
  const c = clients[id];
  if (!c) throw new Error(`no client ${JSON.stringify(id)}`);
  return c;
}

function handshakeDone(c) {
  return c.events.some((e) => e.ev === 'open' || e.ev === 'close' || e.ev === 'end' ||
    e.ev === 'error' || (e.ev === 'http' && e.status !== 101));
}

function openWs(c, step, url) {
  const headers = Object.assign({}, step.headers || {});
  const opts = { headers, perMessageDeflate: false, handshakeTimeout: step.timeout || 5000,
    maxPayload: 64 * 1024 * 1024 };
  if (step.origin) opts.origin = step.origin;
  const ws = new WebSocket(url, opts);
  c.conn = ws;
  ws.on('upgrade', (res) => push(c, { ev: 'http', status: res.statusCode, headers: res.headers }));
  ws.on('open', () => {
    push(c, { ev: 'open' });
    if (step.pause) ws._socket.pause();
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) push(c, { ev: 'binary', hex: Buffer.from(data).toString('hex') });
    else push(c, textEvent(data.toString('utf8')));
  });
  ws.on('ping', (data) => push(c, { ev: 'ping', hex: data.toString('hex') }));
  ws.on('pong', (data) => push(c, { ev: 'pong', hex: data.toString('hex') }));
  ws.on('close', (code, reason) => push(c, { ev: 'close', code, reason: reason.toString('utf8') }));
  ws.on('error', (err) => push(c, { ev: 'error', message: err.message }));
  ws.on('unexpected-response', (req, res) => {
    const chunks = [];
    let reported = false;
    const report = () => {
      if (reported) return;
      reported = true;
      push(c, { ev: 'http', status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8').slice(0, 2000) });
      req.destroy();
      res.destroy();
      push(c, { ev: 'end' });
    };
    res.on('data', (d) => chunks.push(d));
    res.on('end', report);
    res.on('error', report);
    res.on('close', report);
    setTimeout(report, 2000).unref();
  });
}

function openRaw(c, step) {
  const u = new URL(scenario.base);
  const raw = new RawClient({ host: u.hostname, port: Number(u.port), path: `${step.path || '/ws'}${step.query ? '?' + step.query : ''}`,
    headers: Object.assign({}, step.headers || {}, step.origin ? { Origin: step.origin } : {}),
    pauseOnOpen: !!step.pause, autoPong: step.autoPong, autoClose: step.autoClose }, (ev) => {
    if (ev.ev === 'text') push(c, textEvent(ev.payload.toString('utf8')));
    else if (ev.ev === 'binary' || ev.ev === 'ping' || ev.ev === 'pong') push(c, { ev: ev.ev, hex: ev.payload.toString('hex') });
    else if (ev.ev === 'tcpclose') c.tcpClosed = true;
    else push(c, ev);
  });
  c.conn = raw;
  raw.connect();
}

function payloadOf(f) {
  if (f.hex !== undefined) return Buffer.from(f.hex, 'hex');
  if (f.json !== undefined) return Buffer.from(JSON.stringify(f.json), 'utf8');
  if (f.fill !== undefined) return Buffer.alloc(f.fill.count, f.fill.byte);
  if (f.text !== undefined) return Buffer.from(f.text, 'utf8');
  return Buffer.alloc(0);
}

function sendText(c, str) {
  if (c.kind === 'ws') {
    if (c.conn.readyState !== WebSocket.OPEN) throw new Error(`client ${c.id} is not open (state ${c.conn.readyState})`);
    c.conn.send(str);
  } else if (!c.conn.write({ opcode: OP.text, payload: Buffer.from(str, 'utf8') })) {
    throw new Error(`client ${c.id}: connection ended`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stdinLines = null;
function nextStdinLine() {
  if (!stdinLines) {
    stdinLines = { queue: [], waiting: null, closed: false };
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (l) => {
      if (stdinLines.waiting) {
        const w = stdinLines.waiting;
        stdinLines.waiting = null;
        w.resolve(l);
      } else {
        stdinLines.queue.push(l);
      }
    });
    rl.on('close', () => {
      stdinLines.closed = true;
      if (stdinLines.waiting) stdinLines.waiting.reject(new Error('stdin closed at a checkpoint'));
    });
  }
  if (stdinLines.queue.length) return Promise.resolve(stdinLines.queue.shift());
  if (stdinLines.closed) return Promise.reject(new Error('stdin closed at a checkpoint'));
  return new Promise((resolve, reject) => { stdinLines.waiting = { resolve, reject }; });
}

// ---- steps ----

async function runStep(step) {
  const ids = step.id === undefined ? [] : Array.isArray(step.id) ? step.id : [step.id];
  switch (step.op) {
    case 'open': {
      if (clients[step.id]) throw new Error(`client ${step.id} exists`);
      const c = { id: step.id, kind: step.kind || 'ws', events: [], seen: {} };
      clients[step.id] = c;
      const url = `${scenario.base}${step.path || '/ws'}${step.query ? '?' + step.query : ''}`;
      if (c.kind === 'ws') openWs(c, step, url);
      else if (c.kind === 'raw') openRaw(c, step);
      else throw new Error(`unknown client kind ${c.kind}`);
      await waitFor(() => handshakeDone(c), (step.timeout || 5000) + 1000,
        () => `client ${c.id}: handshake not done; events ${JSON.stringify(c.events)}`);
      const opened = c.events.some((e) => e.ev === 'open');
      if (step.require !== false && !opened) {
        throw new Error(`client ${c.id} did not open: ${JSON.stringify(c.events)}`);
      }
      return { opened };
    }
    case 'send': {
      const c = client(step.id);
      sendText(c, step.text !== undefined ? step.text : JSON.stringify(step.json));
      return {};
    }
    case 'burst': {
      const c = client(step.id);
      for (let i = 0; i < step.count; i++) sendText(c, JSON.stringify({ type: 'msg', text: `${step.prefix}:${i}` }));
      return {};
    }
    case 'stream': {
      const c = client(step.id);
      const watch = (step.watch || []).map(client);
      const window = step.window || 16;
      const size = step.size || 100;
      let sent = 0;
      const behind = () => Math.min(...watch.map((w) => w.seen[step.prefix] || 0), sent);
      const sendSome = () => {
        while (sent < step.count && sent - behind() < window) {
          let text = `${step.prefix}:${sent}:`;
          text += 'x'.repeat(Math.max(0, size - text.length));
          sendText(c, JSON.stringify({ type: 'msg', text }));
          sent++;
        }
        return sent >= step.count;
      };
      await waitFor(sendSome, step.timeout || 20000,
        () => `stream ${step.prefix}: sent ${sent} of ${step.count}; seen by the watched: ${watch.map((w) => `${w.id}=${w.seen[step.prefix] || 0}`).join(' ')}`);
      return { sent };
    }
    case 'frames': {
      const c = client(step.id);
      if (c.kind !== 'raw') throw new Error('frames: raw clients only');
      for (const f of step.frames) {
        if (f.delay) await sleep(f.delay);
        c.conn.write({ opcode: f.opcode === undefined ? OP.text : f.opcode, fin: f.fin, rsv: f.rsv, mask: f.mask,
          payload: payloadOf(f) });
      }
      return {};
    }
    case 'ping': {
      const c = client(step.id);
      const p = Buffer.from(step.hex || '', 'hex');
      if (c.kind === 'ws') c.conn.ping(p);
      else c.conn.write({ opcode: OP.ping, payload: p });
      return {};
    }
    case 'close': {
      const c = client(step.id);
      if (c.kind === 'ws') c.conn.close(step.code || 1000);
      else {
        const p = Buffer.alloc(2);
        p.writeUInt16BE(step.code || 1000, 0);
        c.conn.write({ opcode: OP.close, payload: p });
      }
      return {};
    }
    case 'terminate': {
      const c = client(step.id);
      if (c.kind === 'ws') c.conn.terminate();
      else c.conn.destroy();
      return {};
    }
    case 'pause':
    case 'resume': {
      for (const id of ids) {
        const c = client(id);
        const sock = c.kind === 'ws' ? c.conn._socket : c.conn.sock;
        if (!sock) throw new Error(`client ${id} has no socket`);
        if (step.op === 'pause') sock.pause();
        else sock.resume();
      }
      return {};
    }
    case 'wait': {
      const pats = Array.isArray(step.match) ? step.match : [step.match];
      const want = step.count === undefined ? 1 : step.count;
      const state = ids.map((id) => ({ c: client(id), idx: 0, n: 0 }));
      await waitFor(() => {
        for (const s of state) {
          for (; s.idx < s.c.events.length; s.idx++) {
            if (pats.some((p) => matches(s.c.events[s.idx], p))) s.n++;
          }
        }
        return state.every((s) => s.n >= want);
      }, step.timeout || 5000, () => {
        const short = state.filter((s) => s.n < want).map((s) => {
          const last = s.c.events.slice(-3).map((e) => JSON.stringify(e).slice(0, 160));
          return `${s.c.id} has ${s.n} of ${s.c.events.length} events (last: ${last.join(' ')})`;
        });
        return `want ${want} of ${JSON.stringify(step.match)}; ${short.join('; ')}`;
      });
      return {};
    }
    case 'sleep':
      await sleep(step.ms);
      return {};
    case 'checkpoint': {
      process.stdout.write(JSON.stringify({ checkpoint: step.name }) + '\n');
      const line = await nextStdinLine();
      return { reply: line };
    }
    case 'kill':
      process.kill(step.pid, step.signal || 'SIGTERM');
      return {};
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
}

function finish(error) {
  if (finished) return;
  finished = true;
  const out = { ok: !error, error: error || null, elapsed_ms: Date.now() - started, steps, clients: {} };
  for (const [id, c] of Object.entries(clients)) {
    out.clients[id] = { kind: c.kind, events: c.events };
    try {
      if (c.kind === 'ws') c.conn.terminate();
      else c.conn.destroy();
    } catch (e) { /* already gone */ }
  }
  process.stdout.write(JSON.stringify({ result: out }) + '\n', () => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
}

async function main() {
  const all = scenario.steps || [];
  for (let i = 0; i < all.length; i++) {
    const step = all[i];
    const t0 = Date.now();
    try {
      const info = await runStep(step);
      steps.push({ i, op: step.op, id: step.id, ok: true, ms: Date.now() - t0, info });
    } catch (e) {
      steps.push({ i, op: step.op, id: step.id, ok: false, ms: Date.now() - t0, error: e.message });
      finish(`step ${i} (${JSON.stringify(step).slice(0, 300)}) failed: ${e.message}`);
      return;
    }
    if (finished) return;
  }
  finish(null);
}

setTimeout(() => finish(`scenario timed out after ${scenario.timeout || 30000} ms`), scenario.timeout || 30000);
process.on('uncaughtException', (e) => finish(`uncaught exception: ${e.stack || e}`));
process.on('unhandledRejection', (e) => finish(`unhandled rejection: ${(e && e.stack) || e}`));
main();
