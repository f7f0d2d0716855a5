// A real SMTP server with TLS and a login, for Hale's mail tests (smtp-server, from the
// Nodemailer project): STARTTLS on submission, or TLS from the first byte (smtps).
//
//   node smtp-tls.mjs PORT DIR CERT KEY starttls|smtps USER PASSWORD
//
// It takes mail only over TLS and after the login; each message is kept in DIR as NNNN.eml,
// after a first line saying how the session was secured. Prints "ready" once listening.
import fs from 'node:fs'
import path from 'node:path'
import { SMTPServer } from 'smtp-server'

const [port, dir, certFile, keyFile, mode, user, password] = process.argv.slice(2)
let count = 0

const server = new SMTPServer({
  secure: mode === 'smtps',
  key: fs.readFileSync(keyFile),
  cert: fs.readFileSync(certFile),
  authMethods: ['PLAIN', 'LOGIN'],
  allowInsecureAuth: false,
  logger: false,
  onAuth (auth, session, callback) {
    if (!session.secure) return callback(new Error('TLS first'))
    if (auth.username === user && auth.password === password) return callback(null, { user })
    callback(new Error('Invalid username or password'))
  },
  onMailFrom (address, session, callback) {
    if (!session.secure || !session.user) return callback(new Error('TLS and a login first'))
    callback()
  },
  onData (stream, session, callback) {
    const chunks = []
    stream.on('data', (chunk) => chunks.push(chunk))
    stream.on('end', () => {
      count += 1
      const head = `X-Test-Session: tls=${session.secure} user=${session.user}\r\n`
      const name = path.join(dir, String(count).padStart(4, '0') + '.eml')
      fs.writeFileSync(name, head + Buffer.concat(chunks).toString())
      callback()
    })
  }
})
server.on('error', (e) => { console.error(e.message) })
server.listen(Number(port), '127.0.0.1', () => console.log('ready'))
