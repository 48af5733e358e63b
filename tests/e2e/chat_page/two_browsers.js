'use strict';
// two_browsers.js: drives weft's web chat page (GET / on the chat port) in two headless Chromium
// contexts and prints what it found as one JSON line, for tests/e2e/test_chat_page.py to judge.
//
//   node chat_page/two_browsers.js http://127.0.0.1:PORT [--screenshot FILE] [--chromium PATH]
//       (cwd tests/e2e, or anywhere: playwright-core resolves from tests/e2e/node_modules)
//
// Browser A opens /?room=R&name=alice (the page connects at once from the URL); browser B opens
// / and fills in #name and #room and clicks #connect. Then: both show "open" in #status and a
// member count of 2 in #members; A sends a message with Enter and it shows in B's #messages with
// its sender and a time, as text (markup in it must not become elements); B answers with the Send
// button and A sees it; a screenshot is taken (when a step fails: one of the page where it
// stopped); B switches rooms and both counts drop to 1. Every request either page makes (the
// 'request' and 'websocket' events) must go to the weft host: the page may load nothing from
// elsewhere. Page errors and console errors fail the run.
//
// Output: {"ok":bool,"error":null|"...","steps":[{"step","ok","ms","detail"?}],"requests":[URL],
// "outside":[URL],"console":[...],"page_errors":[...],"screenshot":FILE|null}. Exit 0 when ok,
// 1 when a check failed, 2 on the overall timeout (40 s): it always exits.

const OVERALL_MS = 40000;
const STEP_MS = 10000;

const args = process.argv.slice(2);
let base = null;
let screenshot = '/tmp/chat_page.png';
let chromiumPath = '/usr/bin/chromium';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--screenshot') screenshot = args[++i];
  else if (args[i] === '--chromium') chromiumPath = args[++i];
  else if (!base) base = args[i];
}

const result = {
  ok: false, error: null, base, steps: [], requests: [], outside: [], console: [],
  page_errors: [], screenshot: null,
};
let printed = false;
const pages = [];   // [label, page], for a screenshot when a step fails

function finish(code) {
  if (!printed) {
    printed = true;
    process.stdout.write(JSON.stringify(result) + '\n');
  }
  // Playwright kills the browsers it launched on exit.
  process.exit(code);
}

const overall = setTimeout(() => {
  result.ok = false;
  result.error = (result.error ? result.error + '; ' : '') +
    `overall timeout: ${OVERALL_MS} ms passed`;
  finish(2);
}, OVERALL_MS);

if (!base) {
  result.error = 'usage: two_browsers.js http://HOST:PORT [--screenshot FILE]';
  finish(1);
}
const baseUrl = new URL(base);

let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  result.error = `cannot load playwright-core: ${e.message}`;
  finish(1);
}

// Whether a URL is on the weft host (the same host and port, http or ws), or needs no network.
function local(url) {
  let u;
  try {
    u = new URL(url);
  } catch (e) {
    return false;
  }
  if (u.protocol === 'data:' || u.protocol === 'about:') return true;
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return false;
  return u.host === baseUrl.host;
}

function watch(page, label) {
  page.on('request', (req) => {
    const url = req.url();
    result.requests.push(`${label} ${url}`);
    if (!local(url)) result.outside.push(`${label} ${url}`);
  });
  page.on('websocket', (ws) => {
    const url = ws.url();
    result.requests.push(`${label} ${url}`);
    if (!local(url)) result.outside.push(`${label} ${url}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') result.console.push(`${label}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => result.page_errors.push(`${label}: ${err.message}`));
}

async function step(name, fn) {
  const t0 = Date.now();
  const rec = { step: name, ok: false, ms: 0 };
  result.steps.push(rec);
  try {
    const detail = await fn();
    rec.ok = true;
    if (detail !== undefined) rec.detail = detail;
  } catch (e) {
    rec.detail = String((e && e.message) || e).split('\n').slice(0, 6).join('\n');
    throw new Error(`step "${name}" failed: ${rec.detail}`);
  } finally {
    rec.ms = Date.now() - t0;
  }
}

// The member count #members shows, from its data-count and its text (they must agree).
async function waitMembers(page, n) {
  await page.waitForFunction((want) => {
    const m = document.getElementById('members');
    return m && m.dataset.count === String(want) && new RegExp('\\b' + want + '\\b').test(m.textContent);
  }, n, { timeout: STEP_MS });
  return page.textContent('#members');
}

async function waitOpen(page, room) {
  await page.waitForFunction((r) => {
    const s = document.getElementById('status');
    return s && s.dataset.state === 'open' && s.textContent.includes('#' + r);
  }, room, { timeout: STEP_MS });
  return page.textContent('#status');
}

// Waits until #messages holds a message from `from` whose text is exactly `text`; returns what
// that item shows.
async function waitMessage(page, from, text) {
  const handle = await page.waitForFunction(([f, t]) => {
    for (const li of document.querySelectorAll('#messages li')) {
      const tx = li.querySelector('.text');
      const fr = li.querySelector('.from');
      if (tx && fr && tx.textContent === t && fr.textContent === f) {
        const time = li.querySelector('time');
        return {
          from: fr.textContent, text: tx.textContent, time: time ? time.textContent : null,
          datetime: time ? time.getAttribute('datetime') : null,
          elements_in_text: tx.querySelectorAll('*').length,
        };
      }
    }
    return null;
  }, [from, text], { timeout: STEP_MS });
  return handle.jsonValue();
}

async function main() {
  const room = `page-${process.pid}-${Date.now() % 100000}`;
  const room2 = `${room}-b`;
  const msgA = `hello from alice <b>bold?</b> & "quotes" \\ ${Date.now()}`;
  const msgB = `hi alice, bob here <img src=x onerror=alert(1)>`;
  let browser;
  await step('launch', async () => {
    browser = await playwright.chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: STEP_MS,
    });
    return browser.version();
  });
  const ctxA = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const ctxB = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  watch(a, 'A');
  watch(b, 'B');
  pages.push(['A', a], ['B', b]);

  await step('A opens the page with ?room&name and connects', async () => {
    const q = `?room=${encodeURIComponent(room)}&name=alice`;
    const resp = await a.goto(new URL('/' + q, baseUrl).href, { timeout: STEP_MS });
    if (!resp || resp.status() !== 200) throw new Error(`GET / answered ${resp && resp.status()}`);
    return waitOpen(a, room);
  });
  await step('A shows 1 member', () => waitMembers(a, 1));

  await step('B opens the page, fills in name and room, clicks Connect', async () => {
    const resp = await b.goto(new URL('/', baseUrl).href, { timeout: STEP_MS });
    if (!resp || resp.status() !== 200) throw new Error(`GET / answered ${resp && resp.status()}`);
    const labels = await b.evaluate(() => ['name', 'room', 'text'].map(
      (id) => !!(document.querySelector(`label[for="${id}"]`) || document.getElementById(id).closest('label'))));
    if (labels.includes(false)) throw new Error(`inputs without labels: ${JSON.stringify(labels)}`);
    await b.fill('#name', 'bob');
    await b.fill('#room', room);
    await b.click('#connect');
    return waitOpen(b, room);
  });

  await step('both show 2 members', async () => {
    const [ta, tb] = await Promise.all([waitMembers(a, 2), waitMembers(b, 2)]);
    return { A: ta, B: tb };
  });

  await step('A sends with Enter; B sees it with sender and time, as text', async () => {
    await a.fill('#text', msgA);
    await a.press('#text', 'Enter');
    const got = await waitMessage(b, 'alice', msgA);
    if (!got.time || !got.datetime) throw new Error(`no time shown: ${JSON.stringify(got)}`);
    const t = Date.parse(got.datetime);
    if (!(Math.abs(t - Date.now()) < 120000)) throw new Error(`time far off: ${got.datetime}`);
    if (got.elements_in_text !== 0) throw new Error('message markup became elements');
    if ((await a.inputValue('#text')) !== '') throw new Error('#text not cleared after sending');
    await waitMessage(a, 'alice', msgA);
    return got;
  });

  await step('B sends with the Send button; A sees it', async () => {
    await b.fill('#text', msgB);
    await b.click('#send');
    const got = await waitMessage(a, 'bob', msgB);
    const imgs = await a.evaluate(() => document.querySelectorAll('#messages img').length);
    if (imgs !== 0 || got.elements_in_text !== 0) throw new Error('message markup became elements');
    return got;
  });

  await step('screenshot', async () => {
    await b.screenshot({ path: screenshot, fullPage: false, timeout: STEP_MS });
    result.screenshot = screenshot;
    return screenshot;
  });

  await step('B switches rooms; both show 1 member', async () => {
    await b.fill('#room', room2);
    await b.click('#connect');
    await waitOpen(b, room2);
    const [ta, tb] = await Promise.all([waitMembers(a, 1), waitMembers(b, 1)]);
    return { A: ta, B: tb };
  });

  await step('nothing loaded from outside the weft host', async () => {
    if (result.outside.length) throw new Error(`outside requests: ${result.outside.join(', ')}`);
    if (!result.requests.some((r) => r.includes('/ws?'))) {
      throw new Error('no WebSocket request seen');
    }
    return `${result.requests.length} requests, all to ${baseUrl.host}`;
  });

  await step('no page errors or console errors', async () => {
    const bad = result.page_errors.concat(result.console);
    if (bad.length) throw new Error(bad.join('; '));
  });

  await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]);
}

main().then(() => {
  clearTimeout(overall);
  result.ok = result.steps.every((s) => s.ok);
  finish(result.ok ? 0 : 1);
}, async (e) => {
  result.ok = false;
  result.error = String((e && e.message) || e);
  // A picture of where it stopped: the page of the step's subject, B once B has started.
  const started = pages.filter(([, p]) => p.url() !== 'about:blank');
  if (!result.screenshot && started.length) {
    const [label, p] = started[started.length - 1];
    try {
      await p.screenshot({ path: screenshot, timeout: 5000 });
      result.screenshot = `${screenshot} (page ${label}, at the failure)`;
    } catch (err) {
      // no screenshot then
    }
  }
  clearTimeout(overall);
  finish(1);
});
