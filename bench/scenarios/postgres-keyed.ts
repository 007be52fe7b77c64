import diagnosticsChannel from 'node:diagnostics_channel'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { KeyedStore, postgres, type PostgresTarget, ShutdownRegistry, type WriteEndMessage } from 'offload-store'
import pg from 'pg'
import { type BenchRecord, generateState } from '../data.js'
import { combineLoopStats, type LoopStats, startLoopMonitor } from '../loop-monitor.js'
import { collectGarbage } from '../memory.js'
import { type Spread, spreadOf } from '../percentiles.js'
import { startWorkload } from '../workload.js'
import { alternatingRates, bareUpsertEntriesSql, createBareEntriesSql } from './postgres-savers.js'

// The large keyed state with rows instead of a file: a KeyedStore on PostgreSQL and one on a file,
// 1% of the entries changed every 100 ms, in windows interleaved with idle ones; the rows the
// server wrote per save, counted by the server; and sequential durable saves of a 1% change
// against a bare pg upsert of the same rows, alternating.

/** What the keyed part of the PostgreSQL scenario runs. */
export interface PostgresKeyedPlan {
  /** Serialized size of the generated records (15 MB: about 66,000 entries). */
  readonly stateBytes: number
  /** Measured ms per mode (idle, file, PostgreSQL), split into `rounds` interleaved windows. */
  readonly durationMs: number
  readonly rounds: number
  /** The durable round: alternating rounds of `saves` sequential saves per side. */
  readonly durable: { readonly rounds: number, readonly saves: number }
}

/** One target's windows: a save every `intervalMs` with 1% of the entries changed. */
export interface KeyedWindowFigures {
  readonly loop: LoopStats
  /** Writes that ended inside the measured windows. */
  readonly writes: number
  /** `writes` per second of measured window. */
  readonly savesPerSec: number
  /** Main-thread ms per write (the check and the post of the changes), from `offload-store:write:end`. */
  readonly mainMs: Spread
}

/** The large keyed state on PostgreSQL beside a file, and the keyed durable round. */
export interface PostgresKeyedResult {
  readonly entries: number
  /** `JSON.stringify` length of the whole state as one object, bytes. */
  readonly stateBytes: number
  readonly intervalMs: number
  /** Entries changed before each save (1%). */
  readonly changedPerSave: number
  /** Loop delay with the server-like workload and no saves, windows interleaved with the others. */
  readonly idle: LoopStats
  readonly file: KeyedWindowFigures
  readonly postgres: KeyedWindowFigures & {
    /** n_tup_ins + n_tup_upd + n_tup_del of the entries table over every measured save, from pg_stat_user_tables. */
    readonly rowsWritten: number
    /** Writes those rows came from: the windows' and the durable round's. */
    readonly rowWrites: number
    /** Entries set on the store over those writes: what a save that writes only the change writes. */
    readonly entriesChanged: number
    /** rowsWritten / rowWrites. */
    readonly rowsPerSave: number
  }
  /** Sequential `saveNow()`s of a 1% change against a bare pg upsert of the same rows. */
  readonly durable: {
    readonly rounds: number
    readonly savesPerRound: number
    /** Median over rounds of `saveNow()`s per second. */
    readonly saveOpsPerSec: number
    /** Median over rounds of bare upserts per second (JSON.stringify of each changed entry + one autocommitted statement). */
    readonly bareOpsPerSec: number
    /** Median of the per-round ratios save/bare. */
    readonly ratio: number
    readonly roundRatios: readonly number[]
  }
}

/** Options of {@link runPostgresKeyed}. */
export interface PostgresKeyedOptions {
  readonly dir: string
  readonly connectionString: string
  readonly plan: PostgresKeyedPlan
}

type Entry = BenchRecord

const TABLE = 'bench_keyed'
const ENTRIES_TABLE = `${TABLE}_entries`
const BARE_TABLE = 'bench_bare_entries'
/** Names every connection of the keyed stores, so the scenario can wait for them to end. */
const APPLICATION = 'offload-store-bench-keyed'
const STORE_NAME = 'keyed-large'
const INTERVAL_MS = 100

/** The writes of the store at `path`: a count, and the main-thread ms of those that report it. */
function collectWrites (path: string): { readonly mainMs: number[], count: () => number, stop: () => void } {
  const mainMs: number[] = []
  let count = 0
  const onEnd = (message: unknown): void => {
    const end = message as WriteEndMessage
    if (end.path !== path) return
    count++
    if (end.mainMs !== undefined) mainMs.push(end.mainMs)
  }
  diagnosticsChannel.subscribe('offload-store:write:end', onEnd)
  return { mainMs, count: () => count, stop: () => { diagnosticsChannel.unsubscribe('offload-store:write:end', onEnd) } }
}

/** Sets `count` entries to a changed copy, a different slice of the keys at each step. */
function touch (set: (key: string, value: Entry) => void, get: (key: string) => Entry | undefined, keys: readonly string[], count: number, step: number): number {
  let changed = 0
  for (let i = 0; i < count; i++) {
    const key = keys[(step * count + i) % keys.length] ?? ''
    const record = get(key)
    if (record === undefined) continue
    set(key, { ...record, value: (record.value + step + 1) % 1000 })
    changed++
  }
  return changed
}

/** A keyed store under test with its own step counter and its count of entries set. */
interface Subject {
  readonly store: KeyedStore<string, Entry>
  readonly writes: ReturnType<typeof collectWrites>
  step: number
  changed: number
}

function change (subject: Subject, keys: readonly string[], count: number): void {
  const { store } = subject
  subject.changed += touch((k, v) => { store.set(k, v) }, (k) => store.get(k), keys, count, subject.step++)
}

/** One measured window; with a subject, a save every INTERVAL_MS. Returns its loop figures and the writes that ended inside it. */
async function window (ms: number, subject: Subject | undefined, keys: readonly string[], count: number): Promise<{ loop: LoopStats, writes: number }> {
  const workload = startWorkload()
  const writesBefore = subject?.writes.count() ?? 0
  const monitor = startLoopMonitor()
  const timer = subject === undefined
    ? undefined
    : setInterval(() => {
      change(subject, keys, count)
      // A failed save keeps its changes; the next one retries them, and rowsPerSave would show a double write.
      subject.store.saveNow().catch(() => {})
    }, INTERVAL_MS)
  await sleep(ms)
  const loop = monitor.stop()
  if (timer !== undefined) clearInterval(timer)
  workload.stop()
  const writes = (subject?.writes.count() ?? 0) - writesBefore
  // Not measured: the last change is written before the next window starts.
  await subject?.store.saveNow()
  return { loop, writes }
}

function figures (windows: ReadonlyArray<{ loop: LoopStats, writes: number }>, windowMs: number, mainMs: readonly number[]): KeyedWindowFigures {
  const writes = windows.reduce((sum, w) => sum + w.writes, 0)
  return { loop: combineLoopStats(windows.map((w) => w.loop)), writes, savesPerSec: writes / (windows.length * windowMs / 1000), mainMs: spreadOf(mainMs) }
}

function keyedStore (path: string, target: PostgresTarget | undefined): KeyedStore<string, Entry> {
  // delayMs of an hour: only the scenario's saveNow() writes.
  return new KeyedStore<string, Entry>({ path, shutdownRegister: new ShutdownRegistry().register, delayMs: 3_600_000, ...(target === undefined ? {} : { name: STORE_NAME, target }) })
}

async function fill (store: KeyedStore<string, Entry>, entries: ReadonlyMap<string, Entry>): Promise<void> {
  await store.load()
  for (const [key, value] of entries) store.set(key, value)
  await store.saveNow()
}

/**
 * The rows written to the entries table so far, as the server counts them. A backend reports its
 * counts to the shared statistics at most once a second, and at the latest when it exits: so this
 * waits until every connection of the keyed stores has ended (the stores are closed), then reads.
 */
async function rowsWrittenSoFar (admin: pg.Client): Promise<number> {
  for (let i = 0; ; i++) {
    const { rows } = await admin.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [APPLICATION])
    if (rows[0]?.n === '0') break
    if (i >= 500) throw new Error(`the keyed stores' connections did not end within 10 s of close(): ${rows[0]?.n ?? '?'} left`)
    await sleep(20)
  }
  const { rows } = await admin.query<{ n: string | null }>('SELECT n_tup_ins + n_tup_upd + n_tup_del AS n FROM pg_stat_user_tables WHERE relname = $1', [ENTRIES_TABLE])
  return Number(rows[0]?.n ?? 0)
}

/** Runs the keyed part on the server at `connectionString`. */
export async function runPostgresKeyed (options: PostgresKeyedOptions): Promise<PostgresKeyedResult> {
  const { dir, plan } = options
  const entries = new Map(generateState(plan.stateBytes, 7).records.map((record) => [record.id, record]))
  const keys = [...entries.keys()]
  const stateBytes = JSON.stringify(Object.fromEntries(entries)).length
  const count = Math.max(1, Math.round(entries.size / 100))
  const separator = options.connectionString.includes('?') ? '&' : '?'
  const target = postgres({ connectionString: `${options.connectionString}${separator}application_name=${APPLICATION}`, table: TABLE })
  const admin = new pg.Client({ connectionString: options.connectionString })
  await admin.connect()
  try {
    // The first save writes every entry once: done by a store closed before the count starts.
    const pgPath = join(dir, 'postgres-keyed-large.json')
    const filling = keyedStore(pgPath, target)
    await fill(filling, entries)
    await filling.close()
    const rowsBefore = await rowsWrittenSoFar(admin)

    const filePath = join(dir, 'postgres-keyed-large-file.json')
    const file: Subject = { store: keyedStore(filePath, undefined), writes: collectWrites(filePath), step: 0, changed: 0 }
    const db: Subject = { store: keyedStore(pgPath, target), writes: collectWrites(pgPath), step: 0, changed: 0 }
    let durable: PostgresKeyedResult['durable']
    const idleWindows: Array<{ loop: LoopStats, writes: number }> = []
    const fileWindows: Array<{ loop: LoopStats, writes: number }> = []
    const pgWindows: Array<{ loop: LoopStats, writes: number }> = []
    const windowMs = plan.durationMs / plan.rounds
    let fileMain: number[] = []
    let pgMain: number[] = []
    try {
      await fill(file.store, entries)
      await db.store.load()
      const fileFillWrites = file.writes.mainMs.length
      collectGarbage()
      for (let round = 0; round < plan.rounds; round++) {
        idleWindows.push(await window(windowMs, undefined, keys, count))
        // The two targets take turns going first: the machine's load drifts.
        const order = round % 2 === 0 ? [file, db] : [db, file]
        for (const subject of order) (subject === file ? fileWindows : pgWindows).push(await window(windowMs, subject, keys, count))
      }
      fileMain = file.writes.mainMs.slice(fileFillWrites)
      pgMain = [...db.writes.mainMs]
      collectGarbage()
      durable = await durableRound(options, db, entries, keys, count)
    } finally {
      // Closed before the counting stops: a write made by close() is one the rows came from.
      try {
        await file.store.close()
      } finally {
        try {
          await db.store.close()
        } finally {
          file.writes.stop()
          db.writes.stop()
        }
      }
    }
    const rowsWritten = await rowsWrittenSoFar(admin) - rowsBefore
    const rowWrites = db.writes.count()
    return {
      entries: entries.size,
      stateBytes,
      intervalMs: INTERVAL_MS,
      changedPerSave: count,
      idle: combineLoopStats(idleWindows.map((w) => w.loop)),
      file: figures(fileWindows, windowMs, fileMain),
      postgres: { ...figures(pgWindows, windowMs, pgMain), rowsWritten, rowWrites, entriesChanged: db.changed, rowsPerSave: rowsWritten / rowWrites },
      durable
    }
  } finally {
    await admin.end()
  }
}

/** Sequential calls of `op`; their rate per second. */
async function timed (op: () => Promise<unknown>, times: number): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < times; i++) await op()
  return times * 1000 / (performance.now() - start)
}

async function durableRound (options: PostgresKeyedOptions, db: Subject, entries: ReadonlyMap<string, Entry>, keys: readonly string[], count: number): Promise<PostgresKeyedResult['durable']> {
  const client = new pg.Client({ connectionString: options.connectionString })
  await client.connect()
  try {
    // The bare side's own table, of the entries table's layout, holding the same entries.
    await client.query(createBareEntriesSql(BARE_TABLE))
    const sql = bareUpsertEntriesSql(BARE_TABLE)
    const upsert = async (changes: ReadonlyArray<readonly [string, Entry]>): Promise<void> => {
      await client.query(sql, [STORE_NAME, changes.map(([k]) => k), changes.map(([, v]) => Buffer.from(JSON.stringify(v)))])
    }
    await upsert([...entries])
    const bareEntries = new Map(entries)
    let bareStep = 0
    // What an application writing the rows itself does per save: change the entries, encode each, one statement.
    const bare = async (): Promise<void> => {
      const changes: Array<[string, Entry]> = []
      touch((k, v) => { bareEntries.set(k, v); changes.push([k, v]) }, (k) => bareEntries.get(k), keys, count, bareStep++)
      await upsert(changes)
    }
    const save = async (): Promise<void> => {
      change(db, keys, count)
      await db.store.saveNow()
    }
    for (let i = 0; i < 3; i++) { await bare(); await save() }
    const { rounds, saves: perRound } = options.plan.durable
    return { rounds, savesPerRound: perRound, ...await alternatingRates(rounds, async (op) => await timed(op, perRound), bare, save) }
  } finally {
    await client.end()
  }
}
