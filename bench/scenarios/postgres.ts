import { basename, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { codecs, postgres, ShutdownRegistry, Store, type WriterPool } from 'offload-store'
import pg from 'pg'
import { generateState, mutateState } from '../data.js'
import { benchEncoder, type EncoderName } from '../encoders.js'
import { median } from '../percentiles.js'
import { findPostgresBin, POSTGRES_MISSING, startBenchPostgres } from '../postgres-server.js'
import { sizeLabel } from '../report-table.js'
import type { ThroughputPair } from '../run-result.js'
import { type LoadPattern, type LoopLatencyResult, runLoopLatency } from './loop-latency.js'
import { type PostgresKeyedPlan, type PostgresKeyedResult, runPostgresKeyed } from './postgres-keyed.js'
import { alternatingRates, bareUpsertSql, createBareTableSql, PostgresInlineSaver, PostgresOffloadedSaver } from './postgres-savers.js'

// The PostgreSQL target beside the file, on a server the scenario starts: the loop delay with a
// heavy encoder (offloaded against inline), durable saves/s against a bare pg loop, the main
// thread's time per save with a file and with PostgreSQL for the same state, and the large keyed
// state on both targets (postgres-keyed.ts).

/** What the PostgreSQL scenario runs and for how long. */
export interface PostgresPlan {
  readonly loopScenarios: ReadonlyArray<{ readonly sizeBytes: number, readonly encoder: EncoderName, readonly pattern: LoadPattern }>
  /** Measured time per mode of each loop scenario, ms, split into `loopRounds` interleaved windows. */
  readonly loopDurationMs: number
  readonly loopRounds: number
  /** save() against the bare loop: payload sizes, alternating rounds, and the length of each slice. */
  readonly throughput: { readonly payloadSizes: readonly number[], readonly rounds: number, readonly sliceMs: number }
  /** Main-thread ms per save, file against PostgreSQL: state sizes, and saves of each (the first 3 warm up). */
  readonly mainThread: { readonly sizes: readonly number[], readonly saves: number }
  /** The large keyed state on PostgreSQL beside a file, and the keyed durable round; not run when absent. */
  readonly keyed?: PostgresKeyedPlan
}

/** Main-thread ms per save of one state, with a file and with PostgreSQL (medians, interleaved saves). */
interface PostgresMainThreadRow {
  readonly actualBytes: number
  readonly fileMainMs: number
  readonly postgresMainMs: number
  /** postgresMainMs / fileMainMs. */
  readonly ratio: number
  /** Saves measured per target. */
  readonly saves: number
}

/** The PostgreSQL scenario's figures, or why it did not run. */
export type PostgresResult =
  | { readonly kind: 'postgres', readonly skipped: string }
  | {
    readonly kind: 'postgres'
    readonly skipped?: undefined
    /** The server's version; it runs on this machine, over loopback, with fsync and synchronous_commit on. */
    readonly server: string
    /** The loop-latency scenarios with rows instead of files: inline is encode + pg upsert on the main thread. */
    readonly loopLatency: readonly LoopLatencyResult[]
    /** Durable saves/s of `Store.save()` on PostgreSQL against the bare pg loop (JSON.stringify + one autocommitted upsert), per payload. */
    readonly throughput: readonly ThroughputPair[]
    readonly mainThread: readonly PostgresMainThreadRow[]
    /** The large keyed state, 1% changed every 100 ms, on PostgreSQL and on a file; rows per save; saveNow() against a bare upsert. */
    readonly keyed?: PostgresKeyedResult
  }

/** Options of {@link runPostgres}. */
export interface PostgresOptions {
  readonly dir: string
  readonly pool: WriterPool
  readonly plan: PostgresPlan
  /** Where `initdb` and `postgres` are; found on this machine when absent (see findPostgresBin). */
  readonly binDir?: string
  /** Progress, one call per part. */
  readonly step?: (label: string) => void
}

const STORE_TABLE = 'bench_store'
const BARE_TABLE = 'bench_bare'

/**
 * Starts a PostgreSQL server and runs the plan against it; resolves `{ skipped }` (never throws for
 * it) when no server binary is found, so the report says so.
 */
export async function runPostgres (options: PostgresOptions): Promise<PostgresResult> {
  const bin = findPostgresBin(options.binDir)
  if (bin === undefined) return { kind: 'postgres', skipped: POSTGRES_MISSING }
  const server = await startBenchPostgres(bin)
  const step = options.step ?? (() => {})
  try {
    const { connectionString } = server
    const setup = new pg.Client({ connectionString })
    await setup.connect()
    await setup.query(createBareTableSql(BARE_TABLE))
    await setup.end()
    const target = postgres({ connectionString, table: STORE_TABLE })

    const loopLatency: LoopLatencyResult[] = []
    for (const spec of options.plan.loopScenarios) {
      const name = `postgres/${spec.encoder}/${sizeLabel(spec.sizeBytes)}/${spec.pattern}`
      step(`loop latency ${name}`)
      const state = generateState(spec.sizeBytes)
      const encoder = await benchEncoder(spec.encoder)
      loopLatency.push(await runLoopLatency(
        { name, sizeBytes: spec.sizeBytes, actualBytes: JSON.stringify(state).length, encoder: spec.encoder, pattern: spec.pattern, durationMs: options.plan.loopDurationMs, rounds: options.plan.loopRounds },
        {
          encoder,
          state,
          mutate: (i) => { mutateState(state, i) },
          dir: options.dir,
          pool: options.pool,
          // One row per mode, named as the file would be: each window's store takes and releases its lease.
          saverFor: (mode, path) => mode === 'inline'
            ? new PostgresInlineSaver(connectionString, BARE_TABLE, path, encoder)
            : new PostgresOffloadedSaver(path, basename(path, '.json'), encoder.codec, options.pool, target)
        }
      ))
    }

    const throughput: ThroughputPair[] = []
    for (const payloadBytes of options.plan.throughput.payloadSizes) {
      step(`PostgreSQL: save() against a bare pg loop, ${sizeLabel(payloadBytes)}`)
      throughput.push(await throughputPair(options, connectionString, target, payloadBytes))
    }

    step('PostgreSQL: main-thread ms per save, file against PostgreSQL')
    const mainThread: PostgresMainThreadRow[] = []
    for (const sizeBytes of options.plan.mainThread.sizes) mainThread.push(await mainThreadRow(options, target, sizeBytes))

    const keyedPlan = options.plan.keyed
    let keyed: PostgresKeyedResult | undefined
    if (keyedPlan !== undefined) {
      step(`PostgreSQL: a keyed state of ${sizeLabel(keyedPlan.stateBytes)}, 1% changed every 100 ms, against a file; saveNow() against a bare pg upsert`)
      keyed = await runPostgresKeyed({ dir: options.dir, connectionString, plan: keyedPlan })
    }
    return { kind: 'postgres', server: `PostgreSQL ${server.version}`, loopLatency, throughput, mainThread, ...(keyed === undefined ? {} : { keyed }) }
  } finally {
    await server.stop()
  }
}

/** Sequential calls of `op` for `ms`; their rate per second. */
async function slice (op: () => Promise<unknown>, ms: number): Promise<number> {
  const start = performance.now()
  let done = 0
  while (performance.now() - start < ms) {
    await op()
    done++
  }
  return done * 1000 / (performance.now() - start)
}

async function throughputPair (options: PostgresOptions, connectionString: string, target: ReturnType<typeof postgres>, payloadBytes: number): Promise<ThroughputPair> {
  const value = generateState(payloadBytes, 7)
  const client = new pg.Client({ connectionString })
  await client.connect()
  const sql = bareUpsertSql(BARE_TABLE)
  const key = `throughput-${payloadBytes}`
  const store = new Store<unknown>({
    path: join(options.dir, `postgres-throughput-${payloadBytes}.json`),
    name: key,
    codec: codecs.json(),
    pool: options.pool,
    target,
    shutdownRegister: new ShutdownRegistry().register,
    skipUnchanged: false,
    handoffWarnMs: Infinity
  })
  // The bare loop encodes too: what any durable writer of the value does, so the ratio is what the library adds.
  const bare = async (): Promise<unknown> => await client.query(sql, [key, Buffer.from(JSON.stringify(value))])
  const save = async (): Promise<void> => { await store.save(value) }
  try {
    // Warm up both: the connection, the lease, the worker and its pool, the statements' plans.
    for (let i = 0; i < 5; i++) { await bare(); await save() }
    const { rounds, sliceMs } = options.plan.throughput
    return { payloadBytes: Buffer.byteLength(JSON.stringify(value)), ...await alternatingRates(rounds, async (op) => await slice(op, sliceMs), bare, save) }
  } finally {
    await store.close()
    await client.end()
  }
}

async function mainThreadRow (options: PostgresOptions, target: ReturnType<typeof postgres>, sizeBytes: number): Promise<PostgresMainThreadRow> {
  const state = generateState(sizeBytes)
  const register = new ShutdownRegistry().register
  const common = { codec: codecs.json(), pool: options.pool, shutdownRegister: register, skipUnchanged: false, handoffWarnMs: Infinity }
  const file = new Store<unknown>({ ...common, path: join(options.dir, `postgres-main-file-${sizeBytes}.json`) })
  const db = new Store<unknown>({ ...common, path: join(options.dir, `postgres-main-db-${sizeBytes}.json`), name: `main-${sizeBytes}`, target })
  const fileMs: number[] = []
  const dbMs: number[] = []
  try {
    // Interleaved, so both see the same machine; the first saves warm both paths up.
    for (let i = 0; i < options.plan.mainThread.saves; i++) {
      mutateState(state, i)
      await file.save(state)
      await db.save(state)
      if (i < 3) continue
      const f = file.stats().lastWrite?.mainMs
      const d = db.stats().lastWrite?.mainMs
      if (f !== undefined) fileMs.push(f)
      if (d !== undefined) dbMs.push(d)
    }
  } finally {
    await file.close()
    await db.close()
  }
  const fileMainMs = median(fileMs)
  const postgresMainMs = median(dbMs)
  return { actualBytes: JSON.stringify(state).length, fileMainMs, postgresMainMs, ratio: postgresMainMs / fileMainMs, saves: Math.min(fileMs.length, dbMs.length) }
}
