// Chat clients for test_chat_redis.py: argv[2] is JSON {"clients":[{"url":...,"name":...}],
// "send":[index,...], "wait_ms":N}. Every client joins; then each client listed in "send" sends
// one message "m-<name>"; after wait_ms the script prints, per client, the texts of the "msg"
// messages it received, in order, as JSON, and exits. It always exits within 15 s.
const WebSocket = require('ws');
const spec = JSON.parse(process.argv[2]);
const got = spec.clients.map(() => []);
const socks = [];
let joined = 0;
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', got })); process.exit(1); }, 15000);
spec.clients.forEach((c, i) => {
  const ws = new WebSocket(c.url);
  socks.push(ws);
  ws.on('error', e => { console.log(JSON.stringify({ error: String(e), got })); process.exit(1); });
  ws.on('message', data => {
    const m = JSON.parse(data);
    if (m.type === 'joined' && ++joined === spec.clients.length) start();
    if (m.type === 'msg') got[i].push(m.text);
  });
});
function start() {
  setTimeout(() => {
    for (const i of spec.send) socks[i].send(JSON.stringify({ type: 'msg', text: 'm-' + spec.clients[i].name }));
    setTimeout(() => { console.log(JSON.stringify({ got })); process.exit(0); }, spec.wait_ms);
  }, 200);
}
