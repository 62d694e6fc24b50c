// A Node (OpenSSL) TLS 1.2 WebSocket echo server (the `ws` package) that
// renegotiates each connection once, AFTER_MS after it opens, while its
// client keeps sending: what issue 16 measured. It answers each message and
// sends one message of its own every 100 ms, so data flows while the new
// handshake runs. Usage: node renegotiating-ws-server.js CERT KEY AFTER_MS
// It prints "listening PORT", then "reneg ok" or "reneg failed: ERR" per
// connection.
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');
const [cert, key, after] = process.argv.slice(2);
const server = https.createServer({
  cert: fs.readFileSync(cert), key: fs.readFileSync(key),
  minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2',
});
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  const socket = req.socket;
  ws.on('error', () => {});
  ws.on('message', (m) => ws.send(m));
  const tick = setInterval(() => ws.send('tick ' + Date.now()), 100);
  const timer = setTimeout(() => {
    socket.renegotiate({ rejectUnauthorized: false }, (err) =>
      console.log(err ? 'reneg failed: ' + err.message : 'reneg ok'));
  }, Number(after));
  ws.on('close', () => { clearInterval(tick); clearTimeout(timer); });
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
