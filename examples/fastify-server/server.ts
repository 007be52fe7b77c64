// The example server's entry point: `npm run example` from the repository root.
//
//   PORT           port on 127.0.0.1 (default 3000; 0 picks a free one)
//   HOST           address to listen on (default 127.0.0.1)
//   DATA_DIR       where pairings.json and settings.json live (default ./data)
//   DATABASE_URL   keep the state in this PostgreSQL database instead of DATA_DIR, shared by every
//                  instance given the same URL: one leads, the others wait as standbys
//   LEASE_MS       with DATABASE_URL: how long a dead leader keeps the leases (default 10000)
//   SAVES=off      keep everything in memory, for comparing the loop delay without saves
//   SAVE_DELAY_MS  debounce of the writes that changes schedule (default 1000)
//   JOURNAL=on     append the pairings' changes to a journal instead of rewriting the file
//   LOG_LEVEL      Fastify's log level, on stderr (default warn)
//
// Prints {"listening":"http://127.0.0.1:PORT"} on stdout once it takes requests, and
// {"role":"leader"} once it holds the stores (at once with files; after taking the leases on
// PostgreSQL), and {"role":"fenced"} when it finds a lease taken over by another instance. SIGTERM or SIGINT closes the server (in-flight requests finish), then flushes
// every store, then releases the leases, then exits 0.
import closeWithGrace from 'close-with-grace'
import diagnosticsChannel from 'node:diagnostics_channel'
import { channels, type LeaseLostMessage } from '../../src/index.js'
import { buildApp } from './app.js'

function intFromEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be an integer >= 0, got ${JSON.stringify(raw)}`)
  return value
}

const databaseUrl = process.env['DATABASE_URL']
const { app, shutdown, leader, closeStores } = await buildApp({
  dataDir: process.env['DATA_DIR'] ?? './data',
  saves: process.env['SAVES'] !== 'off',
  saveDelayMs: intFromEnv('SAVE_DELAY_MS', 1000),
  journal: process.env['JOURNAL'] === 'on',
  logLevel: process.env['LOG_LEVEL'] ?? 'warn',
  ...(databaseUrl === undefined || databaseUrl === '' ? {} : { postgres: { connectionString: databaseUrl, leaseMs: intFromEnv('LEASE_MS', 10_000) } })
})

let closing = false
// A second signal, or 10 s without finishing, exits 1 at once (close-with-grace logs why to stderr).
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  closing = true
  if (err !== undefined) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await app.close() // stop taking requests; the in-flight ones finish (and make their changes)
  await shutdown.flush() // then write what every store still holds; rejects (exit 1) if a write fails
  await closeStores() // then hand the leases over, so a standby takes over without waiting for them to expire
})

const url = await app.listen({ port: intFromEnv('PORT', 3000), host: process.env['HOST'] ?? '127.0.0.1' })
process.stdout.write(JSON.stringify({ listening: url }) + '\n')
// A lease taken over behind this instance's back (it was paused past LEASE_MS): it stops serving.
diagnosticsChannel.subscribe(channels.leaseLost.name, (message) => {
  process.stdout.write(JSON.stringify({ role: 'fenced', store: (message as LeaseLostMessage).store }) + '\n')
})
leader.then(() => {
  process.stdout.write(JSON.stringify({ role: 'leader' }) + '\n')
}, (err: unknown) => {
  if (closing) return
  // The database is unreachable or refuses us: a supervisor restarts the process.
  app.log.error({ err }, 'could not take the stores over')
  process.exit(1)
})
