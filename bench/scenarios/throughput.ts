import { closeSync, constants, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Bench } from 'tinybench'
import { codecs, ShutdownRegistry, Store, type WriterPool } from 'offload-store'
import { generateState } from '../data.js'
import { atomicWriteSync } from '../../workers/atomic-write.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { median } from '../percentiles.js'
import type { ThroughputPair, ThroughputResult } from '../run-result.js'

/** Options of {@link runThroughput}. */
export interface ThroughputOptions {
  readonly dir: string
  readonly pool: WriterPool
  /** tinybench time budget per task per round, ms. */
  readonly timePerTaskMs: number
  /** Short alternating rounds: the disk's fsync speed drifts, so both tasks are sampled close together. */
  readonly rounds: number
  /** Also measure a 1 MB payload, and 1 KB with `durability: 'none'` against the loop without fsync. */
  readonly extended?: boolean
}

let bareSeq = 0

/** One durable replace with no library: what a single write physically costs on this disk. */
function bareDurableWrite (dir: string, target: string, data: Buffer, sync = true): void {
  const temp = join(dir, `.bare.${process.pid}.${bareSeq++}.tmp`)
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    writeSync(fd, data)
    if (sync) fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, target)
  if (!sync) return
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
}

// Median latency, not the mean: one fsync stall caused by another tenant of this disk would
// otherwise decide a whole round. Both tasks are read the same way, so the ratio stays fair.
function opsPerSec (bench: Bench, name: string): number {
  const result = bench.getTask(name)?.result
  if (result === undefined || !('latency' in result)) throw new Error(`tinybench task ${name} did not complete: ${JSON.stringify(result)}`)
  return 1000 / result.latency.p50
}

/** Measures sequential durable `save()` throughput next to the bare-loop limit. */
export async function runThroughput (options: ThroughputOptions): Promise<ThroughputResult> {
  const dir = join(options.dir, 'throughput')
  mkdirSync(dir, { recursive: true })
  const value = generateState(1024, 7)
  const data = Buffer.from(JSON.stringify(value))
  const bareTarget = join(dir, 'bare.json')
  const saver = new OffloadedSaver(join(dir, 'store.json'), codecs.json(), options.pool)
  const saves: number[] = []
  const bares: number[] = []
  const ratios: number[] = []
  const atomics: number[] = []
  const atomicTarget = join(dir, 'atomic.json')
  try {
    for (let round = 0; round < options.rounds; round++) {
      const bench = new Bench({ time: options.timePerTaskMs, iterations: 10, warmupTime: 50, warmupIterations: 3, throws: true })
      const tasks: Array<[string, () => unknown]> = [
        ['bare', () => { bareDurableWrite(dir, bareTarget, data) }],
        ['save', async () => { await saver.save(value) }],
        ['atomicWriteSync', () => { atomicWriteSync(atomicTarget, data, 0o600, 'full') }]
      ]
      // Alternate the order: the disk's speed drifts within a round too.
      if (round % 2 === 1) tasks.reverse()
      for (const [name, fn] of tasks) bench.add(name, fn)
      await bench.run()
      const bare = opsPerSec(bench, 'bare')
      const save = opsPerSec(bench, 'save')
      bares.push(bare)
      saves.push(save)
      ratios.push(save / bare)
      atomics.push(opsPerSec(bench, 'atomicWriteSync'))
    }
  } finally {
    await saver.close()
  }
  const extra = options.extended === true
    ? {
        large: await pairOf(options, dir, generateState(1_000_000, 7), 'full'),
        noSync: await pairOf(options, dir, value, 'none')
      }
    : {}
  return {
    ...extra,
    kind: 'throughput',
    payloadBytes: data.byteLength,
    rounds: options.rounds,
    saveOpsPerSec: median(saves),
    bareOpsPerSec: median(bares),
    ratio: median(ratios),
    roundRatios: ratios,
    atomicWriteOpsPerSec: median(atomics)
  }
}

/** save() against its bare loop (JSON.stringify + the same syscalls) for one payload and durability, in alternating rounds. */
async function pairOf (options: ThroughputOptions, dir: string, value: unknown, durability: 'full' | 'none'): Promise<ThroughputPair> {
  const data = Buffer.from(JSON.stringify(value))
  const name = `${durability}-${data.byteLength}`
  const bareTarget = join(dir, `bare-${name}.json`)
  const registry = new ShutdownRegistry()
  const store = new Store<unknown>({ path: join(dir, `store-${name}.json`), codec: codecs.json(), pool: options.pool, shutdownRegister: registry.register, skipUnchanged: false, handoffWarnMs: Infinity, durability })
  const saves: number[] = []
  const bares: number[] = []
  const ratios: number[] = []
  try {
    for (let round = 0; round < options.rounds; round++) {
      const bench = new Bench({ time: options.timePerTaskMs, iterations: 5, warmupTime: 50, warmupIterations: 3, throws: true })
      const tasks: Array<[string, () => unknown]> = [
        // The bare loop encodes too: at 1 MB the store's JSON.stringify is part of every save, and
        // this pair measures what the library adds to the work any durable writer of a value does.
        ['bare', () => { bareDurableWrite(dir, bareTarget, Buffer.from(JSON.stringify(value)), durability === 'full') }],
        ['save', async () => { await store.save(value) }]
      ]
      if (round % 2 === 1) tasks.reverse()
      for (const [task, fn] of tasks) bench.add(task, fn)
      await bench.run()
      const bare = opsPerSec(bench, 'bare')
      const save = opsPerSec(bench, 'save')
      bares.push(bare)
      saves.push(save)
      ratios.push(save / bare)
    }
  } finally {
    await store.close()
  }
  return { payloadBytes: data.byteLength, saveOpsPerSec: median(saves), bareOpsPerSec: median(bares), ratio: median(ratios), roundRatios: ratios }
}
