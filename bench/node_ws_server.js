#!/usr/bin/env node
/* node_ws_server.js: a chat broadcast server on Node's `ws` package, speaking weft's chat protocol
 * (SPEC.md, "Chat service"), for bench/chat_vs_node.py to run beside weft.
 *
 *   node bench/node_ws_server.js [--no-join-presence] [PORT]
 *
 * `ws` comes from NODE_PATH or else tests/e2e/node_modules (./scripts/npm-deps.sh installs it).
 *
 * One process, one thread, 127.0.0.1 only; PORT 0 (the default) picks a free port. Prints
 * `listening chat 127.0.0.1:PORT` when ready. SIGTERM or SIGINT ends it at once (no handler:
 * a JS handler would wait behind a busy event loop).
 *
 * --no-join-presence: a join is not announced to the room (the joiner still gets "joined"). Only
 * for setting up big rooms in a bench: N joins into one room cost N(N-1)/2 presence deliveries,
 * which at 10,000 members takes Node longer than the whole benchmark may run. It only takes
 * work away from Node; everything measured after the joins is unchanged.
 *
 * Protocol, as weft's: WebSocket at GET /ws?room=ROOM&name=NAME (defaults lobby, guest-N).
 * Client: {"type":"msg","text":"..."} and {"type":"join","room":"R"}. Server, to every member of
 * the room, sender included: {"type":"msg","room":R,"from":NAME,"text":...,"ts":MICROSECONDS},
 * ts taken when the message arrived; to a joiner {"type":"joined","room","name","members"}; to the
 * others {"type":"presence","room","name","event":"join"|"leave","members"}; bad input
 * {"type":"error","error":"..."}. Messages are limited to 64 KiB (close 1009), as weft's default.
 *
 * Broadcast is what a typical Node app does: JSON.stringify once, then ws.send(string) to each
 * member. No slow-consumer policy (ws buffers without bound), as in most such apps. */
'use strict';

const http = require('http');
const path = require('path');

/* ws from NODE_PATH, or else from tests/e2e/node_modules (./scripts/npm-deps.sh installs it). */
function requireWs() {
  try {
    return require('ws');
  } catch (e) {
    return require(path.join(__dirname, '..', 'tests', 'e2e', 'node_modules', 'ws'));
  }
}
const { WebSocketServer, WebSocket } = requireWs();
const { performance } = require('perf_hooks');

const args = process.argv.slice(2);
const joinPresence = !args.includes('--no-join-presence');
const port = Number(args.filter((a) => !a.startsWith('--'))[0] || 0);
const MAX_MESSAGE = 64 * 1024;

/* Microseconds since the epoch (CLOCK_REALTIME, as weft's ts) with sub-millisecond resolution:
 * performance.now() (monotonic, fractional ms) plus an offset to Date.now() measured at start-up
 * at the instant Date.now() ticks over (the smallest of 20 readings). A double holds the result
 * exactly (~1.7e15 < 2^53). */
function calibrate() {
  let best = Infinity;
  for (let i = 0; i < 20; i++) {
    const d = Date.now();
    let d2;
    while ((d2 = Date.now()) === d) { /* spin to the next millisecond */ }
    const off = (performance.timeOrigin + performance.now()) * 1000 - d2 * 1000;
    if (off < best) best = off;
  }
  return performance.timeOrigin * 1000 - best;
}
const clockBaseUs = calibrate();
function nowUs() {
  return Math.round(clockBaseUs + performance.now() * 1000);
}

const rooms = new Map(); // room name -> Set of ws
let guest = 1;

function nameOk(s) {
  return typeof s === 'string' && s.length > 0 && Buffer.byteLength(s) < 64 &&
    !/[\x00-\x1f\x7f]/.test(s);
}

function broadcast(room, obj, except) {
  const members = rooms.get(room);
  if (!members) return;
  const s = JSON.stringify(obj);
  for (const c of members) {
    if (c !== except && c.readyState === WebSocket.OPEN) c.send(s);
  }
}

function join(ws, room) {
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  ws.room = room;
  ws.send(JSON.stringify({ type: 'joined', room, name: ws.name, members: members.size }));
  if (!joinPresence) return;
  broadcast(room, { type: 'presence', room, name: ws.name, event: 'join', members: members.size },
    ws);
}

function leave(ws) {
  const room = ws.room;
  const members = rooms.get(room);
  ws.room = null;
  if (!members) return;
  members.delete(ws);
  if (members.size === 0) {
    rooms.delete(room);
    return;
  }
  broadcast(room, { type: 'presence', room, name: ws.name, event: 'leave', members: members.size });
}

function sendError(ws, error) {
  ws.send(JSON.stringify({ type: 'error', error }));
}

function onMessage(ws, data, isBinary) {
  const ts = nowUs();
  if (isBinary) {
    ws.close(1003, 'text messages only');
    return;
  }
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch (e) {
    sendError(ws, 'invalid JSON message');
    return;
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    sendError(ws, 'invalid JSON message');
  } else if (typeof m.type !== 'string') {
    sendError(ws, 'missing "type"');
  } else if (m.type === 'msg') {
    if (typeof m.text !== 'string') {
      sendError(ws, '"text" must be a string');
      return;
    }
    broadcast(ws.room, { type: 'msg', room: ws.room, from: ws.name, text: m.text, ts });
  } else if (m.type === 'join') {
    if (!nameOk(m.room)) {
      sendError(ws, '"room" must be a name of 1 to 63 bytes');
    } else if (m.room === ws.room) {
      sendError(ws, 'already in that room');
    } else {
      leave(ws);
      join(ws, m.room);
    }
  } else {
    sendError(ws, 'unknown message type');
  }
}

const server = http.createServer((req, res) => {
  const body = JSON.stringify({ error: 'WebSocket upgrade required' }) + '\n';
  res.writeHead(426, { 'Content-Type': 'application/json', Upgrade: 'websocket' });
  res.end(body);
});

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE, perMessageDeflate: false });

server.on('upgrade', (req, socket, head) => {
  let url;
  try {
    url = new URL(req.url, 'http://localhost');
  } catch (e) {
    url = null;
  }
  if (!url || url.pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const room = url.searchParams.has('room') ? url.searchParams.get('room') : 'lobby';
  const name = url.searchParams.has('name') ? url.searchParams.get('name') : `guest-${guest++}`;
  if (!nameOk(room) || !nameOk(name)) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.name = name;
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('close', () => leave(ws));
    ws.on('error', () => {});
    join(ws, room);
  });
});

server.on('clientError', (err, socket) => socket.destroy());

server.listen(port, '127.0.0.1', 4096, () => {
  console.log(`listening chat 127.0.0.1:${server.address().port}`);
});

