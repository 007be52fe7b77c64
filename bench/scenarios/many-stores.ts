import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as installed from 'offload-store'
import type { WriterPool } from 'offload-store'
import type { Library } from '../builds.js'
import { generateState, mutateState } from '../data.js'
import { type LoopStats, startLoopMonitor } from '../loop-monitor.js'
import { type MemoryFigures, memorySnapshot } from '../memory.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { type Spread, spreadOf } from '../percentiles.js'
import { startWorkload } from '../workload.js'

/** 100 stores saving concurrently on one pool, each as fast as its writes complete. */
export interface ManyStoresResult {
  readonly kind: 'many-stores'
  readonly stores: number
  readonly payloadBytes: number
  readonly durationMs: number
  /** Durable writes per second over all stores. */
  readonly writesPerSec: number
  /** Loop delay of the workload while they save. */
  readonly loop: LoopStats
  /** Call to durable per save. */
  readonly saveLatency: Spread
  readonly memory: MemoryFigures
}

/** Options of {@link runManyStores}. */
export interface ManyStoresOptions {
  readonly dir: string
  readonly pool: WriterPool
  readonly stores: number
  readonly durationMs: number
  /** The build whose Store is measured, with `pool` from the same build. @defaultValue the installed offload-store */
  readonly lib?: Library
}

/** Runs `stores` stores, each saving back to back, beside the server workload. */
export async function runManyStores (options: ManyStoresOptions): Promise<ManyStoresResult> {
  const dir = join(options.dir, 'many-stores')
  mkdirSync(dir, { recursive: true })
  const lib = options.lib ?? installed
  const savers = Array.from({ length: options.stores }, (_, i) => new OffloadedSaver(join(dir, `store-${i}.json`), lib.codecs.json(), options.pool, lib))
  const states = savers.map((_, i) => generateState(1024, 1000 + i))
  const latencies: number[] = []
  let writes = 0
  let deadline = Number.POSITIVE_INFINITY
  // The loops end on a deadline they read themselves, never on a timer: when saves resolve in
  // microtasks (a store that writes inline), no timer fires until every loop has stopped.
  const loopOne = async (i: number): Promise<void> => {
    const saver = savers[i]
    const state = states[i]
    if (saver === undefined || state === undefined) return
    for (let step = 0; performance.now() < deadline; step++) {
      mutateState(state, step)
      const start = performance.now()
      await saver.save(state)
      latencies.push(performance.now() - start)
      writes++
    }
  }
  const monitor = startLoopMonitor()
  const workload = startWorkload()
  const started = performance.now()
  deadline = started + options.durationMs
  const loops = savers.map(async (_, i) => { await loopOne(i) })
  await new Promise((resolve) => setTimeout(resolve, options.durationMs))
  const elapsed = performance.now() - started
  const counted = writes
  workload.stop()
  const loop = monitor.stop()
  await Promise.all(loops)
  await Promise.all(savers.map(async (saver) => { await saver.close() }))
  return {
    kind: 'many-stores',
    stores: options.stores,
    payloadBytes: JSON.stringify(states[0]).length,
    durationMs: options.durationMs,
    writesPerSec: counted / (elapsed / 1000),
    loop,
    saveLatency: spreadOf(latencies),
    memory: memorySnapshot()
  }
}
