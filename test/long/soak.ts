// `npm run test:soak` (not in CI): 100 stores under a delaySave storm for 10 minutes; heap, RSS,
// open descriptors and worker threads must stay flat, and every final file must hold its store's
// last state. Env: SOAK_SECONDS (default 600), SOAK_STORES (default 100), SOAK_RATE (mutations
// per second, default 5000), SOAK_SEED (replays a run's choice of stores and delays; printed at the
// start). Run with --expose-gc so heap samples are taken after a collection.
import diagnosticsChannel from 'node:diagnostics_channel'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ShutdownRegistry, Store, WriterPool } from '../../src/index.js'
import { runSeed, seededRandom } from '../crash/model.js'

const seconds = Number(process.env['SOAK_SECONDS'] ?? 600)
const storeCount = Number(process.env['SOAK_STORES'] ?? 100)
const rate = Number(process.env['SOAK_RATE'] ?? 5000)
const seed = runSeed('SOAK_SEED')
console.log(`seed ${seed} (SOAK_SEED=${seed} replays its choice of stores and delays)`)
const random = seededRandom(seed)
const dir = mkdtempSync(join(tmpdir(), 'offload-store-soak-'))
const registry = new ShutdownRegistry()
const pool = new WriterPool()
let errors = 0
const logger = { error: () => { errors++ }, warn: () => {}, debug: () => {} }
let writes = 0
diagnosticsChannel.subscribe('offload-store:write:end', () => { writes++ })

interface State { id: number, counter: number, items: string[] }
const states: State[] = Array.from({ length: storeCount }, (_, id) => ({ id, counter: 0, items: [] }))
const stores = states.map((state) => new Store<State>({ path: join(dir, `store-${state.id}.json`), shutdownRegister: registry.register, pool, logger }))

function mutate (): void {
  const i = Math.floor(random() * storeCount)
  const state = states[i] as State
  const store = stores[i] as Store<State>
  state.counter++
  state.items.push(`item-${state.counter}`)
  if (state.items.length > 50) state.items.shift() // bounded state: growth would be ours, not the library's
  store.delaySave(() => state, 5 + Math.floor(random() * 100))
}

interface Sample { t: number, heapMb: number, rssMb: number, fds: number, threads: number, writes: number }
const samples: Sample[] = []
const gc = (globalThis as { gc?: () => void }).gc
function sample (t: number): Sample {
  gc?.()
  const memory = process.memoryUsage()
  const s = { t, heapMb: +(memory.heapUsed / 2 ** 20).toFixed(1), rssMb: +(memory.rss / 2 ** 20).toFixed(1), fds: readdirSync('/proc/self/fd').length, threads: pool.threads, writes }
  samples.push(s)
  return s
}

const started = Date.now()
const perTick = Math.max(1, Math.round(rate / 100))
const storm = setInterval(() => { for (let k = 0; k < perTick; k++) mutate() }, 10)
const every = Math.max(1, Math.min(30, Math.floor(seconds / 20)))
await new Promise<void>((resolve) => {
  const sampler = setInterval(() => {
    const t = Math.round((Date.now() - started) / 1000)
    console.log(JSON.stringify(sample(t)))
    if (t >= seconds) { clearInterval(sampler); resolve() }
  }, every * 1000)
})
clearInterval(storm)
await registry.flush()
let wrong = 0
states.forEach((state, i) => {
  const saved = JSON.parse(readFileSync(join(dir, `store-${i}.json`), 'utf8')) as State
  if (saved.counter !== state.counter || JSON.stringify(saved) !== JSON.stringify(state)) wrong++
})
await Promise.all(stores.map(async (store) => { await store.close() }))
await pool.close()

// Flat: compare the second fifth of the run (after warm-up) with the last fifth.
const fifth = Math.max(1, Math.floor(samples.length / 5))
const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
const early = samples.slice(fifth, 2 * fifth)
const late = samples.slice(-fifth)
const summary = {
  seconds,
  stores: storeCount,
  mutations: rate * seconds,
  writes,
  writesPerSecond: Math.round(writes / seconds),
  errors,
  wrongFinalFiles: wrong,
  heapMb: { early: median(early.map((s) => s.heapMb)), late: median(late.map((s) => s.heapMb)), max: Math.max(...samples.map((s) => s.heapMb)) },
  rssMb: { early: median(early.map((s) => s.rssMb)), late: median(late.map((s) => s.rssMb)), max: Math.max(...samples.map((s) => s.rssMb)) },
  fds: { min: Math.min(...samples.map((s) => s.fds)), max: Math.max(...samples.map((s) => s.fds)) },
  threads: { max: Math.max(...samples.map((s) => s.threads)) }
}
console.log(JSON.stringify(summary))
const problems: string[] = []
if (wrong > 0) problems.push(`${wrong} final files do not hold their store's last state`)
if (errors > 0) problems.push(`${errors} write errors were logged`)
if (summary.heapMb.late > summary.heapMb.early * 1.25 + 5) problems.push('heap grew')
if (summary.rssMb.late > summary.rssMb.early * 1.25 + 20) problems.push('RSS grew')
if (summary.fds.max - summary.fds.min > 8) problems.push('open descriptors vary')
if (summary.threads.max > 4) problems.push('more workers than maxThreads')
console.log(problems.length === 0 ? 'SOAK OK' : `SOAK FAILED: ${problems.join('; ')}`)
rmSync(dir, { recursive: true, force: true })
process.exitCode = problems.length === 0 ? 0 : 1
