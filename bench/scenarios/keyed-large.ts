import diagnosticsChannel from 'node:diagnostics_channel'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { codecs, KeyedStore, ShutdownRegistry, Store, type WriteEndMessage, type WriterPool } from 'offload-store'
import { type BenchRecord, generateState } from '../data.js'
import { combineLoopStats, type LoopStats, startLoopMonitor } from '../loop-monitor.js'
import { collectGarbage } from '../memory.js'
import { median, type Spread, spreadOf } from '../percentiles.js'
import { startWorkload } from '../workload.js'

// The keyed targets: a large keyed state saved often must cost the main thread only what changed.
// Every figure here is taken in one run, beside the idle floor and the whole-state hand-off it is
// compared with, so the ratios mean something on a shared machine.

/** What the keyed scenario measured. */
export interface KeyedLargeResult {
  /** Serialized size of the state, bytes, and its number of entries. */
  readonly stateBytes: number
  readonly entries: number
  /** Loop delay with the server-like workload and no saves. */
  readonly idle: LoopStats
  /** A KeyedStore saved every `intervalMs`, `changedPercent`% of entries changed per save. */
  readonly keyed: {
    readonly intervalMs: number
    readonly changedPercent: number
    readonly loop: LoopStats
    readonly saves: number
    /** Main-thread ms per save (check + postMessage of the changes). */
    readonly mainMs: Spread
  }
  /** Main-thread ms of handing the whole state to a worker: a plain Store's save() of the same data (median). */
  readonly wholeHandoffMs: number
  /** keyed.mainMs p50 / wholeHandoffMs. */
  readonly keyedToWholeRatio: number
  /** Main-thread ms of a one-entry change at two state sizes. */
  readonly scaling: { readonly smallEntries: number, readonly largeEntries: number, readonly smallMs: number, readonly largeMs: number, readonly ratio: number }
  /** Sequential durable saves of small deltas with the journal on. */
  readonly journal: { readonly savesPerSec: number, readonly saves: number, readonly changedPerSave: number, readonly loop: LoopStats, readonly idle: LoopStats }
}

/** Options of {@link runKeyedLarge}. */
export interface KeyedLargeOptions {
  readonly dir: string
  readonly pool: WriterPool
  readonly stateBytes: number
  /** Measured ms per mode, split into `rounds` interleaved windows. */
  readonly durationMs: number
  readonly rounds: number
}

type Entry = BenchRecord

function entriesOf (stateBytes: number, seed: number): Map<string, Entry> {
  return new Map(generateState(stateBytes, seed).records.map((record) => [record.id, record]))
}

function collectMainMs (path: string): { readonly samples: number[], stop: () => void } {
  const samples: number[] = []
  const onEnd = (message: unknown): void => {
    const end = message as WriteEndMessage
    if (end.path === path && end.mainMs !== undefined) samples.push(end.mainMs)
  }
  diagnosticsChannel.subscribe('offload-store:write:end', onEnd)
  return { samples, stop: () => { diagnosticsChannel.unsubscribe('offload-store:write:end', onEnd) } }
}

async function window<T> (ms: number, during: () => () => Promise<T> | T): Promise<{ loop: LoopStats, value: T }> {
  const workload = startWorkload()
  const monitor = startLoopMonitor()
  const finish = during()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const loop = monitor.stop()
  workload.stop()
  return { loop, value: await finish() }
}

async function filledStore (path: string, entries: Map<string, Entry>, journal: boolean): Promise<KeyedStore<string, Entry>> {
  const store = new KeyedStore<string, Entry>({ path, shutdownRegister: new ShutdownRegistry().register, delayMs: 3_600_000, journal })
  await store.load()
  for (const [key, value] of entries) store.set(key, value)
  await store.saveNow() // the first write carries every entry once; not measured
  return store
}

function touch (store: KeyedStore<string, Entry>, keys: readonly string[], count: number, step: number): void {
  for (let i = 0; i < count; i++) {
    const key = keys[(step * count + i) % keys.length] ?? ''
    const record = store.get(key)
    if (record !== undefined) store.set(key, { ...record, value: (record.value + step) % 1000 })
  }
}

async function oneEntryCost (dir: string, name: string, stateBytes: number, saves: number): Promise<{ entries: number, ms: number }> {
  const entries = entriesOf(stateBytes, 11)
  const path = join(dir, name)
  const store = await filledStore(path, entries, false)
  const keys = [...entries.keys()]
  const main = collectMainMs(path)
  for (let i = 0; i < saves; i++) {
    touch(store, keys, 1, i)
    await store.saveNow()
  }
  main.stop()
  await store.close()
  return { entries: entries.size, ms: median(main.samples.slice(2)) }
}

/** Runs the keyed large-state scenario. */
export async function runKeyedLarge (options: KeyedLargeOptions): Promise<KeyedLargeResult> {
  const { dir, pool, stateBytes, durationMs, rounds } = options
  const entries = entriesOf(stateBytes, 7)
  const keys = [...entries.keys()]
  const wholeBytes = JSON.stringify(Object.fromEntries(entries)).length

  // The reference: what handing the whole state to a worker costs the main thread, in this run.
  const wholePath = join(dir, 'keyed-whole.json')
  const whole = new Store<Record<string, Entry>>({ path: wholePath, shutdownRegister: new ShutdownRegistry().register, pool, codec: codecs.json(), handoffWarnMs: Infinity, skipUnchanged: false })
  const wholeMain = collectMainMs(wholePath)
  for (let i = 0; i < 4; i++) await whole.save(Object.fromEntries(entries))
  wholeMain.stop()
  await whole.close()
  const wholeHandoffMs = median(wholeMain.samples.slice(1))
  collectGarbage() // the whole-state copies must not be collected inside a measured window

  // A save every intervalMs with 1% of entries changed, interleaved with idle windows.
  const intervalMs = 100
  const changed = Math.max(1, Math.round(entries.size / 100))
  const path = join(dir, 'keyed-large.json')
  const store = await filledStore(path, entries, false)
  collectGarbage()
  const main = collectMainMs(path)
  const idleWindows: LoopStats[] = []
  const keyedWindows: LoopStats[] = []
  let saves = 0
  let step = 0
  const windowMs = durationMs / rounds
  for (let round = 0; round < rounds; round++) {
    idleWindows.push((await window(windowMs, () => () => undefined)).loop)
    keyedWindows.push((await window(windowMs, () => {
      const timer = setInterval(() => {
        touch(store, keys, changed, step++)
        store.saveNow().then(() => { saves++ }, () => {})
      }, intervalMs)
      return async () => {
        clearInterval(timer)
        await store.saveNow()
      }
    })).loop)
  }
  main.stop()
  await store.close()
  const mainMs = spreadOf(main.samples)

  const small = await oneEntryCost(dir, 'keyed-10k.json', Math.round(stateBytes / 10), 40)
  const large = await oneEntryCost(dir, 'keyed-100k.json', stateBytes, 40)

  // The journal: sequential durable saves of small deltas, as fast as they go.
  const journalPath = join(dir, 'keyed-journal.json')
  const journaled = await filledStore(journalPath, entries, true)
  const journalChanged = 10
  const journalIdle = (await window(Math.min(2000, durationMs / 2), () => () => undefined)).loop
  const journalRun = await window(Math.min(3000, durationMs), () => {
    const control = { running: true }
    let count = 0
    const loop = (async () => {
      for (let i = 0; control.running; i++) {
        touch(journaled, keys, journalChanged, i)
        await journaled.saveNow()
        count++
      }
    })()
    const started = performance.now()
    return async () => {
      control.running = false
      await loop
      return { count, seconds: (performance.now() - started) / 1000 }
    }
  })
  await journaled.close()

  return {
    stateBytes: wholeBytes,
    entries: entries.size,
    idle: combineLoopStats(idleWindows),
    keyed: { intervalMs, changedPercent: 1, loop: combineLoopStats(keyedWindows), saves, mainMs },
    wholeHandoffMs,
    keyedToWholeRatio: mainMs.p50Ms / wholeHandoffMs,
    scaling: { smallEntries: small.entries, largeEntries: large.entries, smallMs: small.ms, largeMs: large.ms, ratio: large.ms / small.ms },
    journal: {
      savesPerSec: journalRun.value.count / journalRun.value.seconds,
      saves: journalRun.value.count,
      changedPerSave: journalChanged,
      loop: journalRun.loop,
      idle: journalIdle
    }
  }
}
