// node:cluster with one store: the primary owns it, the workers send it their changes over IPC.
// Each worker runs an HTTP server on a shared port (`POST /count/<name>` adds one to a counter); the
// primary applies every change to its KeyedStore, whose debounced, journaled writes then hold the
// changes of all workers. SIGTERM flushes the store and exits, releasing the file for the next
// deploy. With --mistake, one worker also opens the store itself, as a worker must not: it waits
// `lockTimeout` and gets ERR_STORE_LOCKED naming the primary, and the file loses nothing.
// Run: npm run example:cluster -- [dir] [--mistake]   (port from PORT, default 3000)
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { KeyedStore, ShutdownRegistry } from '../../src/index.js'

/** What a worker sends the primary: one change. */
interface Increment { readonly type: 'increment', readonly name: string }

const dir = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? join(process.cwd(), 'cluster-data')
const mistake = process.argv.includes('--mistake')
const path = join(dir, 'counters.json')
const port = Number(process.env['PORT'] ?? 3000)
const workers = Math.min(4, availableParallelism())
const log = (fields: object): void => { process.stdout.write(JSON.stringify({ pid: process.pid, ...fields }) + '\n') }

if (cluster.isPrimary) {
  const registry = new ShutdownRegistry()
  registry.installSignalHandlers()
  const counters = new KeyedStore<string, number>({ path, shutdownRegister: registry.register, journal: true, delayMs: 100 })
  await counters.load()
  cluster.on('message', (_worker, message: Increment) => {
    if (message.type !== 'increment') return
    counters.set(message.name, (counters.get(message.name) ?? 0) + 1)
  })
  for (let i = 0; i < workers; i++) cluster.fork({ MISTAKE: mistake && i === 0 ? '1' : '' })
  let listening = 0
  // With PORT=0 the workers share one port the primary picks: report the one they listen on.
  cluster.on('listening', (_worker, address) => { if (++listening === workers) log({ ready: true, port: address.port, workers, path }) })
} else {
  if (process.env['MISTAKE'] === '1') {
    // What not to do: a second owner of the primary's file. It waits, then fails clearly.
    const intruder = new KeyedStore<string, number>({ path, shutdownRegister: () => {}, journal: true, lockTimeout: 1000 })
    intruder.load().then(() => { log({ mistake: 'loaded' }) }, (err: { code?: string, holder?: { pid: number } }) => {
      log({ mistake: err.code, holder: err.holder?.pid })
    }).finally(() => { intruder.close().catch(() => {}) })
  }
  createServer((req, res) => {
    const match = /^\/count\/([\w-]{1,64})$/.exec(req.url ?? '')
    if (req.method !== 'POST' || match?.[1] === undefined) {
      res.writeHead(404).end()
      return
    }
    process.send?.({ type: 'increment', name: match[1] } satisfies Increment)
    res.writeHead(202).end()
  }).listen(port)
}
