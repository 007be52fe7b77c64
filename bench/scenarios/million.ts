import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { KeyedStore, ShutdownRegistry, Store } from 'offload-store'
import { bareDurableWrite } from '../bare-write.js'
import { type LoopStats, startLoopMonitor } from '../loop-monitor.js'
import { median } from '../percentiles.js'
import { startWorkload } from '../workload.js'

// A million small entries (about 17 MB of JSON): what loading and first saving cost a KeyedStore
// against a plain Store and an inline JSON.stringify + durable write of the same data, taken in
// alternating repeats of one run, with the loop delay beside an idle window.

/** What the million-entry scenario measured (medians over the repeats). */
export interface MillionResult {
  readonly entries: number
  readonly fileBytes: number
  /** `Store.load()` of the file, ms. */
  readonly storeLoadMs: number
  /** `KeyedStore.load()` of the same file, ms. */
  readonly keyedLoadMs: number
  /** keyedLoadMs / storeLoadMs. */
  readonly loadRatio: number
  /** The first `saveNow()` of a KeyedStore holding every entry, ms until durable. */
  readonly firstSaveMs: number
  /** `JSON.stringify(Object.fromEntries(map))` + a durable atomic write on the main thread, ms. */
  readonly inlineSaveMs: number
  /** firstSaveMs / inlineSaveMs. */
  readonly firstSaveRatio: number
  /** Loop delay: idle, while KeyedStore.load() ran, while the first save ran (largest max over repeats). */
  readonly idle: LoopStats
  readonly loadLoop: LoopStats
  readonly saveLoop: LoopStats
}

/** Options of {@link runMillion}. */
export interface MillionOptions {
  readonly dir: string
  readonly entries: number
  /** Alternating repeats of each measurement. */
  readonly repeats: number
}

async function measured<T> (work: () => Promise<T>): Promise<{ ms: number, loop: LoopStats, value: T }> {
  const workload = startWorkload()
  const monitor = startLoopMonitor()
  // The delay histogram records nothing before its first tick: a stall in the work's synchronous
  // start (a save posting a million changes) would go unseen if the work began at once.
  await new Promise((resolve) => setTimeout(resolve, 10))
  const start = performance.now()
  const value = await work()
  const ms = performance.now() - start
  // One more turn of the loop, so a stall at the very end is sampled.
  await new Promise((resolve) => setTimeout(resolve, 5))
  const loop = monitor.stop()
  workload.stop()
  return { ms, loop, value }
}

function worst (windows: readonly LoopStats[]): LoopStats {
  const last = windows.reduce((a, b) => (b.maxMs > a.maxMs ? b : a))
  return { ...last, p99Ms: median(windows.map((w) => w.p99Ms)) }
}

/** Runs the million-entry scenario. */
export async function runMillion (options: MillionOptions): Promise<MillionResult> {
  const { dir, entries: count, repeats } = options
  const map = new Map<string, number>()
  for (let i = 0; i < count; i++) map.set(`e${String(i).padStart(7, '0')}`, i)
  const path = join(dir, 'million.json')
  const text = JSON.stringify(Object.fromEntries(map))
  writeFileSync(path, text)
  const register = new ShutdownRegistry().register

  const idle: LoopStats[] = []
  const storeLoads: number[] = []
  const keyedLoads: number[] = []
  const loadLoops: LoopStats[] = []
  const firstSaves: number[] = []
  const inlineSaves: number[] = []
  const saveLoops: LoopStats[] = []
  for (let r = 0; r < repeats; r++) {
    idle.push((await measured(async () => { await new Promise((resolve) => setTimeout(resolve, 1000)) })).loop)

    const plain = new Store<Record<string, number>>({ path, shutdownRegister: register })
    storeLoads.push((await measured(async () => await plain.load())).ms)
    await plain.close()

    const keyed = new KeyedStore<string, number>({ path, shutdownRegister: register, delayMs: 3_600_000 })
    const load = await measured(async () => await keyed.load())
    keyedLoads.push(load.ms)
    loadLoops.push(load.loop)
    await keyed.close()

    const inlinePath = join(dir, `million-inline-${r}.json`)
    inlineSaves.push((await measured(async () => { bareDurableWrite(dir, inlinePath, JSON.stringify(Object.fromEntries(map))) })).ms)

    const fresh = new KeyedStore<string, number>({ path: join(dir, `million-first-${r}.json`), shutdownRegister: register, delayMs: 3_600_000 })
    await fresh.load()
    for (const [key, value] of map) fresh.set(key, value)
    const save = await measured(async () => { await fresh.saveNow() })
    firstSaves.push(save.ms)
    saveLoops.push(save.loop)
    await fresh.close()
  }
  const storeLoadMs = median(storeLoads)
  const keyedLoadMs = median(keyedLoads)
  const firstSaveMs = median(firstSaves)
  const inlineSaveMs = median(inlineSaves)
  return {
    entries: count,
    fileBytes: Buffer.byteLength(text),
    storeLoadMs,
    keyedLoadMs,
    loadRatio: keyedLoadMs / storeLoadMs,
    firstSaveMs,
    inlineSaveMs,
    firstSaveRatio: firstSaveMs / inlineSaveMs,
    idle: worst(idle),
    loadLoop: worst(loadLoops),
    saveLoop: worst(saveLoops)
  }
}
