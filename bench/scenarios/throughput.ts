import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Bench } from 'tinybench'
import { codecs, ShutdownRegistry, Store, type WriterPool } from 'offload-store'
import { bareDurableWrite, type FloorWrite } from '../bare-write.js'
import { generateState } from '../data.js'
import { FloorWorker } from '../floor-hop.js'
import { atomicWriteSync } from '../../workers/atomic-write.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { median } from '../percentiles.js'
import type { HopFigures, ThroughputPair, ThroughputResult } from '../run-result.js'

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
  /**
   * Also run a bare worker hop in every round: the bare loop's syscalls in a raw worker, awaited one
   * by one. @defaultValue true
   */
  readonly hop?: boolean
}

// Median latency, not the mean: one fsync stall caused by another tenant of this disk would
// otherwise decide a whole round. Both tasks are read the same way, so the ratio stays fair.
function opsPerSec (bench: Bench, name: string): number {
  const result = bench.getTask(name)?.result
  if (result === undefined || !('latency' in result)) throw new Error(`tinybench task ${name} did not complete: ${JSON.stringify(result)}`)
  return 1000 / result.latency.p50
}

type Tasks = ReadonlyArray<readonly [name: string, fn: () => unknown]>

/**
 * Runs `tasks` in `rounds` short tinybench rounds, reversing their order every other round (the
 * disk's speed drifts within a round too), and returns each round's ops/s by task name.
 */
async function alternatingRounds (options: ThroughputOptions, iterations: number, tasks: Tasks): Promise<Array<Map<string, number>>> {
  const rounds: Array<Map<string, number>> = []
  for (let round = 0; round < options.rounds; round++) {
    const bench = new Bench({ time: options.timePerTaskMs, iterations, warmupTime: 50, warmupIterations: 3, throws: true })
    for (const [name, fn] of round % 2 === 1 ? [...tasks].reverse() : tasks) bench.add(name, fn)
    await bench.run()
    rounds.push(new Map(tasks.map(([name]) => [name, opsPerSec(bench, name)])))
  }
  return rounds
}

/** The save/bare figures of alternating rounds: medians of each, and the median of per-round ratios (the hop's too, when it ran). */
function pairFigures (rounds: ReadonlyArray<ReadonlyMap<string, number>>): { saveOpsPerSec: number, bareOpsPerSec: number, ratio: number, roundRatios: number[], hop?: HopFigures } {
  const of = (name: string): number[] => rounds.map((r) => r.get(name) ?? NaN)
  const bares = of('bare')
  const toBare = (values: readonly number[]): number[] => values.map((value, i) => value / (bares[i] ?? NaN))
  const saves = of('save')
  const roundRatios = toBare(saves)
  const figures = { saveOpsPerSec: median(saves), bareOpsPerSec: median(bares), ratio: median(roundRatios), roundRatios }
  if (!rounds.every((r) => r.has('hop'))) return figures
  const hops = of('hop')
  const hopRatios = toBare(hops)
  return { ...figures, hop: { opsPerSec: median(hops), ratio: median(hopRatios), roundRatios: hopRatios } }
}

/**
 * The bare worker hop as a task: post `payload()` to a raw worker that replaces `target` with it
 * by the bare loop's syscalls, and await its answer, as a caller awaits `save()`.
 */
function hopTask (worker: FloorWorker, target: string, payload: () => Uint8Array | string, sync: boolean): () => Promise<void> {
  return async () => {
    const message: FloorWrite = { target, data: payload(), sync }
    await worker.post(message)
  }
}

/** Measures sequential durable `save()` throughput next to the bare-loop limit (and the bare worker hop). */
export async function runThroughput (options: ThroughputOptions): Promise<ThroughputResult> {
  const dir = join(options.dir, 'throughput')
  mkdirSync(dir, { recursive: true })
  const value = generateState(1024, 7)
  const data = Buffer.from(JSON.stringify(value))
  const bareTarget = join(dir, 'bare.json')
  const worker = options.hop === false ? undefined : new FloorWorker({ kind: 'write', dir })
  try {
    const saver = new OffloadedSaver(join(dir, 'store.json'), codecs.json(), options.pool)
    const atomicTarget = join(dir, 'atomic.json')
    let rounds: Array<Map<string, number>>
    try {
      rounds = await alternatingRounds(options, 10, [
        ['bare', () => { bareDurableWrite(dir, bareTarget, data) }],
        ['save', async () => { await saver.save(value) }],
        ['atomicWriteSync', () => { atomicWriteSync(atomicTarget, data, 0o600, 'full') }],
        // 1 KB goes as the bytes the bare loop writes: a Buffer, copied by the post.
        ...(worker === undefined ? [] : [['hop', hopTask(worker, join(dir, 'hop.json'), () => data, true)] as const])
      ])
    } finally {
      await saver.close()
    }
    const extra = options.extended === true
      ? {
          large: await pairOf(options, dir, generateState(1_000_000, 7), 'full', worker),
          noSync: await pairOf(options, dir, value, 'none', worker)
        }
      : {}
    return {
      ...extra,
      kind: 'throughput',
      payloadBytes: data.byteLength,
      rounds: options.rounds,
      ...pairFigures(rounds),
      atomicWriteOpsPerSec: median(rounds.map((r) => r.get('atomicWriteSync') ?? NaN))
    }
  } finally {
    await worker?.close()
  }
}

/** From this size the hop posts the JSON text, as a design that stringifies on the main thread would; below it, a Buffer of it. */
const TEXT_HOP_BYTES = 100_000

/** save() against its bare loop (JSON.stringify + the same syscalls) for one payload and durability, in alternating rounds. */
async function pairOf (options: ThroughputOptions, dir: string, value: unknown, durability: 'full' | 'none', worker: FloorWorker | undefined): Promise<ThroughputPair> {
  const data = Buffer.from(JSON.stringify(value))
  const name = `${durability}-${data.byteLength}`
  const bareTarget = join(dir, `bare-${name}.json`)
  const registry = new ShutdownRegistry()
  const store = new Store<unknown>({ path: join(dir, `store-${name}.json`), codec: codecs.json(), pool: options.pool, shutdownRegister: registry.register, skipUnchanged: false, handoffWarnMs: Infinity, durability })
  // Like the bare loop, the hop encodes on every write: what any offload of this value pays.
  const payload = data.byteLength >= TEXT_HOP_BYTES ? () => JSON.stringify(value) : () => Buffer.from(JSON.stringify(value))
  let rounds: Array<Map<string, number>>
  try {
    rounds = await alternatingRounds(options, 5, [
      // The bare loop encodes too: at 1 MB the store's JSON.stringify is part of every save, and
      // this pair measures what the library adds to the work any durable writer of a value does.
      ['bare', () => { bareDurableWrite(dir, bareTarget, Buffer.from(JSON.stringify(value)), durability === 'full') }],
      ['save', async () => { await store.save(value) }],
      ...(worker === undefined ? [] : [['hop', hopTask(worker, join(dir, `hop-${name}.json`), payload, durability === 'full')] as const])
    ])
  } finally {
    await store.close()
  }
  return { payloadBytes: data.byteLength, ...pairFigures(rounds) }
}
