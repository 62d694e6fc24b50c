// Node `ws` clients: N sessions, CONC at a time, each sending a message and
// a ping every EVERY_MS for LIFE_MS, then closing with 1000. A session fails
// when it does not end with the server's close frame (1006, an error).
// Usage: node ws-sessions.js URL CAFILE N CONC LIFE_MS EVERY_MS
// It prints one JSON line: {"sessions":N,"failed":F,"codes":{...},"errors":[...]}.
'use strict';
const fs = require('fs');
const WebSocket = require('ws');
const [url, caFile, n, conc, life, every] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const out = { sessions: 0, failed: 0, codes: {}, errors: [] };

function session() {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ca });
    let err = null;
    let timer = null;
    let end = null;
    ws.on('open', () => {
      timer = setInterval(() => { ws.send('hello ' + Date.now()); ws.ping(); }, Number(every));
      end = setTimeout(() => ws.close(1000), Number(life));
    });
    ws.on('error', (e) => { err = e.message; });
    ws.on('close', (code) => {
      clearInterval(timer);
      clearTimeout(end);
      out.sessions++;
      out.codes[code] = (out.codes[code] || 0) + 1;
      if (code !== 1000) {
        out.failed++;
        if (err) out.errors.push(err);
      }
      resolve();
    });
  });
}

async function worker(count) {
  for (let i = 0; i < count; i++) await session();
}

const total = Number(n), c = Number(conc);
const jobs = [];
for (let w = 0; w < c; w++) jobs.push(worker(Math.floor(total / c) + (w < total % c ? 1 : 0)));
Promise.all(jobs).then(() => console.log(JSON.stringify(out)));
