// A Node (OpenSSL) TLS 1.2 server that renegotiates each connection under
// traffic: it sends `lines` lines, one every `every` ms, calls
// socket.renegotiate() after the 10th without pausing, then ends with
// close_notify. Usage: node renegotiating-server.js CERT KEY LINES EVERY_MS
// It prints "listening PORT", then one line per renegotiation outcome.
'use strict';
const fs = require('fs');
const tls = require('tls');
const [cert, key, lines, every] = process.argv.slice(2);
const server = tls.createServer({
  cert: fs.readFileSync(cert), key: fs.readFileSync(key),
  minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2',
}, (socket) => {
  socket.on('error', (err) => console.log('socket error ' + err.message));
  let i = 0;
  const timer = setInterval(() => {
    if (i === Number(lines)) {
      clearInterval(timer);
      socket.end();
      return;
    }
    socket.write(`line ${String(i).padStart(3, '0')} of the stream\n`);
    if (i === 10) {
      socket.renegotiate({}, (err) => console.log('renegotiated ' + (err ? err.message : 'ok')));
    }
    i++;
  }, Number(every));
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
