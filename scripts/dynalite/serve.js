// Starts dynalite (in memory) on a free loopback port for the tests and
// writes the port to a file once it accepts connections.
//
//   node serve.js INSTALL_DIR PORT_FILE
//
// INSTALL_DIR is where scripts/test.sh installed this folder's
// package-lock.json (.tools/dynalite). Port 0 lets the kernel pick a free
// port, so there is no window in which another process could take it.
'use strict'

const fs = require('fs')
const [installDir, portFile] = process.argv.slice(2)
if (!installDir || !portFile) {
  console.error('usage: node serve.js INSTALL_DIR PORT_FILE')
  process.exit(64)
}

const dynalite = require(require.resolve('dynalite', { paths: [installDir] }))
// Short table state changes keep the many per-test tables quick while
// still making clients wait for ACTIVE.
const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 })
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port
  fs.writeFileSync(portFile + '.tmp', String(port))
  fs.renameSync(portFile + '.tmp', portFile)
  console.log('dynalite listening on http://127.0.0.1:' + port)
})
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

// dynalite rethrows the error of a request its client abandoned mid-way
// (index.js: req.on('error', function (err) { throw err })), so one
// client killed while sending a request (the kill tests send SIGKILL to
// amicopier at random moments) took the whole server down, and every
// test after it. DynamoDB drops such a request: so does this server. The
// request never arrived whole, so dynalite never acted on it. Anything
// else still ends the server, as it would have.
process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET' && err.message === 'aborted') {
    console.error('dynalite: a client went away mid-request; request dropped')
    return
  }
  console.error(err)
  process.exit(1)
})
