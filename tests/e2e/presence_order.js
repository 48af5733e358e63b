// For test_chat.py's join-storm check: opens N clients to one room at once and, after they all
// joined and settled, prints per client its own "joined" count and the counts of the "presence"
// join events it received, as JSON. Always exits within 20 s.
const WebSocket = require('ws');
const [url, n] = [process.argv[2], parseInt(process.argv[3], 10)];
const out = [];
let joined = 0;
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', out })); process.exit(1); }, 20000);
for (let i = 0; i < n; i++) {
  const rec = { joined: -1, presence: [] };
  out.push(rec);
  const ws = new WebSocket(`${url}/ws?room=storm&name=c${i}`);
  ws.on('error', e => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
  ws.on('message', d => {
    const m = JSON.parse(d);
    if (m.type === 'joined') {
      rec.joined = m.members;
      if (++joined === n) setTimeout(() => { console.log(JSON.stringify({ out })); process.exit(0); }, 1000);
    } else if (m.type === 'presence' && m.event === 'join') {
      rec.presence.push(m.members);
    }
  });
}
