'use strict';
// wire.js: a raw WebSocket client on a net.Socket, for the protocol tests that need frames a
// well-behaved client library refuses to write (unmasked frames, reserved bits, fragments,
// invalid UTF-8, a socket that never reads). It does its own opening handshake (RFC 6455 4.1),
// encodes client frames and decodes server frames strictly, reporting what it sees as events.
//
// Node 18 and 20, no dependencies.

const crypto = require('crypto');
const net = require('net');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };

// Encodes one client frame. opts: opcode (number), payload (Buffer), fin (default true),
// rsv (0..7, default 0), mask (default true), maskKey (4-byte Buffer, default random).
function encodeFrame(opts) {
  const payload = opts.payload || Buffer.alloc(0);
  const fin = opts.fin === undefined ? true : !!opts.fin;
  const rsv = (opts.rsv || 0) & 7;
  const mask = opts.mask === undefined ? true : !!opts.mask;
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | (opts.opcode & 0x0f);
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = opts.maskKey || crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

// A raw client. Events go to onEvent(ev) as plain objects:
//   {ev:'http', status, headers, body?}  the handshake answer (always first when one came)
//   {ev:'open'}                          101 with the right Sec-WebSocket-Accept
//   {ev:'text', payload: Buffer}         a whole text message (fragments joined)
//   {ev:'binary', payload: Buffer}
//   {ev:'ping'|'pong', payload: Buffer}
//   {ev:'close', code, reason}           a close frame from the server (1005: no code)
//   {ev:'violation', message}            the server broke the protocol
//   {ev:'end'} / {ev:'error', message} / {ev:'tcpclose'}
class RawClient {
  constructor(opts, onEvent) {
    this.opts = opts;
    this.onEvent = onEvent;
    this.key = crypto.randomBytes(16).toString('base64');
    this.buf = Buffer.alloc(0);
    this.handshook = false;
    this.fragments = null; // {opcode, parts: []} while a fragmented message is open
    this.closeSent = false;
    this.closeReceived = false;
    this.ended = false;
    this.autoPong = opts.autoPong !== false;
    this.autoClose = opts.autoClose !== false;
  }

  connect() {
    const o = this.opts;
    const sock = net.connect({ host: o.host, port: o.port });
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', () => {
      const lines = [
        `GET ${o.path} HTTP/1.1`,
        `Host: ${o.host}:${o.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${this.key}`,
        'Sec-WebSocket-Version: 13',
      ];
      for (const [k, v] of Object.entries(o.headers || {})) lines.push(`${k}: ${v}`);
      sock.write(lines.join('\r\n') + '\r\n\r\n');
    });
    sock.on('data', (chunk) => this._data(chunk));
    sock.on('end', () => {
      this.ended = true;
      if (!this.handshook && this.httpPending) this._finishHttp();
      this.onEvent({ ev: 'end' });
    });
    sock.on('error', (err) => this.onEvent({ ev: 'error', message: `${err.code || ''} ${err.message}`.trim() }));
    sock.on('close', () => {
      this.ended = true;
      this.onEvent({ ev: 'tcpclose' });
    });
  }

  _data(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.handshook) {
      if (this.httpPending) {
        this._httpBody();
        return;
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > 16384) {
          this.onEvent({ ev: 'violation', message: 'handshake answer head over 16 KiB' });
          this.sock.destroy();
        }
        return;
      }
      const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      this.buf = this.buf.subarray(end + 4);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
      const headers = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const status = m ? Number(m[1]) : 0;
      if (status !== 101) {
        this.httpPending = { status, headers };
        this._httpBody();
        return;
      }
      this.onEvent({ ev: 'http', status, headers });
      const want = crypto.createHash('sha1').update(this.key + GUID).digest('base64');
      if (headers['sec-websocket-accept'] !== want) {
        this.onEvent({ ev: 'violation', message: `bad Sec-WebSocket-Accept ${headers['sec-websocket-accept']}` });
        this.sock.destroy();
        return;
      }
      if ((headers.upgrade || '').toLowerCase() !== 'websocket' ||
          !/\bupgrade\b/i.test(headers.connection || '')) {
        this.onEvent({ ev: 'violation', message: '101 without Upgrade: websocket / Connection: Upgrade' });
      }
      this.handshook = true;
      this.onEvent({ ev: 'open' });
      if (this.opts.pauseOnOpen) this.sock.pause();
    }
    this._frames();
  }

  // A non-101 answer: read its body (Content-Length, else to EOF), then report it.
  _httpBody() {
    const p = this.httpPending;
    const cl = p.headers['content-length'];
    if (cl !== undefined && this.buf.length >= Number(cl)) this._finishHttp();
  }

  _finishHttp() {
    const p = this.httpPending;
    if (!p || p.done) return;
    p.done = true;
    const cl = p.headers['content-length'];
    const body = cl !== undefined ? this.buf.subarray(0, Number(cl)) : this.buf;
    this.onEvent({ ev: 'http', status: p.status, headers: p.headers, body: body.toString('utf8').slice(0, 2000) });
    this.sock.destroy();
  }

  _frames() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = (b[0] >> 4) & 7;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
        if (len < 126) this._violation(`non-minimal 16-bit length ${len}`);
      } else if (len === 127) {
        if (b.length < 10) return;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this._violation(`64-bit length ${big}`);
          this.sock.destroy();
          return;
        }
        len = Number(big);
        off = 10;
        if (len < 65536) this._violation(`non-minimal 64-bit length ${len}`);
      }
      let key = null;
      if (masked) {
        if (b.length < off + 4) return;
        key = b.subarray(off, off + 4);
        off += 4;
      }
      if (b.length < off + len) return;
      let payload = Buffer.from(b.subarray(off, off + len));
      this.buf = b.subarray(off + len);
      if (masked) {
        this._violation('server frame is masked');
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      if (rsv) this._violation(`server frame has reserved bits ${rsv}`);
      if (opcode >= 8) {
        if (!fin) this._violation('fragmented control frame');
        if (len > 125) this._violation(`control frame of ${len} bytes`);
        this._control(opcode, payload);
        continue;
      }
      if (this.closeReceived) this._violation('data frame after a close frame');
      if (opcode === OP.cont) {
        if (!this.fragments) {
          this._violation('continuation frame with no message open');
          continue;
        }
        this.fragments.parts.push(payload);
      } else if (opcode === OP.text || opcode === OP.binary) {
        if (this.fragments) this._violation('new data frame inside a fragmented message');
        this.fragments = { opcode, parts: [payload] };
      } else {
        this._violation(`reserved opcode ${opcode}`);
        continue;
      }
      if (fin) {
        const whole = Buffer.concat(this.fragments.parts);
        const op = this.fragments.opcode;
        this.fragments = null;
        this.onEvent({ ev: op === OP.text ? 'text' : 'binary', payload: whole });
      }
    }
  }

  _violation(message) {
    this.onEvent({ ev: 'violation', message });
  }

  _control(opcode, payload) {
    if (opcode === OP.ping) {
      this.onEvent({ ev: 'ping', payload });
      if (this.autoPong && !this.closeSent) this.write({ opcode: OP.pong, payload });
    } else if (opcode === OP.pong) {
      this.onEvent({ ev: 'pong', payload });
    } else if (opcode === OP.close) {
      let code = 1005;
      let reason = '';
      if (payload.length === 1) this._violation('close frame with a 1-byte payload');
      if (payload.length >= 2) {
        code = payload.readUInt16BE(0);
        reason = payload.subarray(2).toString('utf8');
      }
      this.closeReceived = true;
      this.onEvent({ ev: 'close', code, reason });
      if (this.autoClose && !this.closeSent) {
        const p = Buffer.alloc(code === 1005 ? 0 : 2);
        if (code !== 1005) p.writeUInt16BE(code, 0);
        this.write({ opcode: OP.close, payload: p });
        this.closeSent = true;
      }
    } else {
      this._violation(`reserved control opcode ${opcode}`);
    }
  }

  // Writes one frame (see encodeFrame), or raw bytes when given a Buffer.
  write(frame) {
    if (this.ended || this.sock.destroyed) return false;
    const bytes = Buffer.isBuffer(frame) ? frame : encodeFrame(frame);
    if (!Buffer.isBuffer(frame) && frame.opcode === OP.close) this.closeSent = true;
    this.sock.write(bytes);
    return true;
  }

  pause() {
    this.sock.pause();
  }

  resume() {
    this.sock.resume();
  }

  destroy() {
    if (this.sock) this.sock.destroy();
  }
}

module.exports = { RawClient, encodeFrame, OP };
