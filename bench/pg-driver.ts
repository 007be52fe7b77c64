// Which PostgreSQL driver the worker writes with: `pg` (node-postgres) against `postgres` (porsager),
// on the write a Store's worker runs (the fenced upsert of writeRowSql, autocommitted, 1 KiB bytea),
// one connection each, in a worker thread as in the library, alternating in rounds on one server.
// Prints one JSON line: per driver, the median over rounds of round trips/s and CPU µs per write of
// the thread that runs the driver (and of the main thread, which only waits).
// Run: npm install --prefix /tmp/porsager postgres
//      npm run build && node dist/bench/pg-driver.js --connection postgres://... --postgres-from /tmp/porsager
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import pg from 'pg'
import { acquireLeaseSql, createSchemaSql, tablesFor, writeRowSql } from '../src/postgres-sql.js'
import type { PostgresTables } from '../src/protocol.js'
import { threadTimes } from './thread-cpu.js'

/** The drivers compared: pg as the worker uses it (unnamed statements), pg with a named prepared statement, and porsager's postgres (prepares by default). */
type Driver = 'pg' | 'pg-prepared' | 'postgres'
const DRIVERS: readonly Driver[] = ['pg', 'pg-prepared', 'postgres']

interface Job {
  readonly driver: Driver
  readonly connection: string
  readonly postgresFrom: string | undefined
  readonly tables: PostgresTables
  readonly key: string
  readonly generation: string
  readonly writes: number
}

interface Figures { readonly perSecond: number, readonly cpuUsPerWrite: number }

/** The part of porsager's API used here (loaded from a directory, so the project does not depend on it). */
interface Porsager {
  unsafe: (query: string, params: unknown[], options?: { prepare?: boolean }) => Promise<{ count: number }>
  end: (options?: { timeout?: number }) => Promise<void>
}
type PorsagerFactory = (url: string, options: { max: number, onnotice: () => void }) => Porsager

async function loadPorsager (from: string | undefined): Promise<PorsagerFactory> {
  if (from === undefined) throw new Error('--postgres-from <dir> is needed: a directory where `npm install --prefix <dir> postgres` installed porsager\'s driver')
  const resolved = createRequire(join(from, 'package.json')).resolve('postgres')
  return ((await import(pathToFileURL(resolved).href)) as { default: PorsagerFactory }).default
}

/** One round for one driver, in this (worker) thread: warm-up, then `writes` sequential fenced upserts. */
async function runJob (job: Job): Promise<Figures> {
  const text = writeRowSql(job.tables)
  const payload = Buffer.alloc(1024, 7)
  let write: (i: number) => Promise<void>
  let end: () => Promise<void>
  if (job.driver === 'postgres') {
    const sql = (await loadPorsager(job.postgresFrom))(job.connection, { max: 1, onnotice: () => {} })
    write = async (i) => {
      const { count } = await sql.unsafe(text, [job.key, job.generation, i, null, payload])
      if (count !== 1) throw new Error('the bench write was fenced: another run holds the lease')
    }
    end = async () => { await sql.end({ timeout: 5 }) }
  } else {
    const pool = new pg.Pool({ connectionString: job.connection, max: 1 })
    const named = job.driver === 'pg-prepared'
    write = async (i) => {
      const values = [job.key, job.generation, i, null, payload]
      const { rowCount } = await pool.query(named ? { name: 'offload-store-write', text, values } : { text, values })
      if (rowCount !== 1) throw new Error('the bench write was fenced: another run holds the lease')
    }
    end = async () => { await pool.end() }
  }
  for (let i = 0; i < 50; i++) await write(i)
  const cpu = threadTimes()
  const start = performance.now()
  for (let i = 0; i < job.writes; i++) await write(i)
  const elapsed = performance.now() - start
  const cpuNs = threadTimes().runNs - cpu.runNs
  await end()
  return { perSecond: job.writes / (elapsed / 1000), cpuUsPerWrite: cpuNs / 1000 / job.writes }
}

function median (samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

async function inWorker (job: Job): Promise<Figures> {
  return await new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: job })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`the ${job.driver} worker exited with ${code}`)) })
  })
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { connection: { type: 'string' }, 'postgres-from': { type: 'string' }, rounds: { type: 'string', default: '6' }, writes: { type: 'string', default: '2000' } } })
  const connection = values.connection ?? process.env['DATABASE_URL']
  if (connection === undefined) throw new Error('give --connection postgres://... (or DATABASE_URL): a server this bench may create the table bench_driver in')
  const rounds = Number(values.rounds)
  const writes = Number(values.writes)
  await loadPorsager(values['postgres-from'])
  const tables = tablesFor('public', 'bench_driver')
  const key = 'driver'
  const admin = new pg.Client({ connectionString: connection })
  await admin.connect()
  for (const sql of createSchemaSql('public', tables)) await admin.query(sql)
  await admin.query(`DELETE FROM ${tables.leases} WHERE name = $1`, [key])
  const { rows } = await admin.query<{ generation: string }>(acquireLeaseSql(tables), [key, 'bench', 3_600_000])
  const generation = rows[0]?.generation
  await admin.end()
  if (generation === undefined) throw new Error('could not take the bench lease')
  const samples = new Map<Driver, { perSecond: number[], cpuUsPerWrite: number[], mainCpuUsPerWrite: number[] }>(DRIVERS.map((d) => [d, { perSecond: [], cpuUsPerWrite: [], mainCpuUsPerWrite: [] }]))
  for (let round = 0; round < rounds; round++) {
    // Alternating order, so neither driver always runs first after the other warmed the server.
    const order = round % 2 === 0 ? DRIVERS : [...DRIVERS].reverse()
    for (const driver of order) {
      const mainBefore = threadTimes().runNs
      const figures = await inWorker({ driver, connection, postgresFrom: values['postgres-from'], tables, key, generation, writes })
      const mainNs = threadTimes().runNs - mainBefore
      const s = samples.get(driver)
      s?.perSecond.push(figures.perSecond)
      s?.cpuUsPerWrite.push(figures.cpuUsPerWrite)
      // The main thread starts the worker and waits: its CPU per write is the fixed start-up spread over the writes.
      s?.mainCpuUsPerWrite.push(mainNs / 1000 / writes)
    }
  }
  const result: Record<string, unknown> = { rounds, writes, payloadBytes: 1024 }
  for (const [driver, s] of samples) {
    result[driver] = {
      perSecond: Math.round(median(s.perSecond)),
      workerCpuUsPerWrite: Math.round(median(s.cpuUsPerWrite) * 10) / 10,
      mainCpuUsPerWrite: Math.round(median(s.mainCpuUsPerWrite) * 10) / 10,
      perSecondRounds: s.perSecond.map(Math.round)
    }
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

if (isMainThread) {
  await main()
} else {
  parentPort?.postMessage(await runJob(workerData as Job))
}
