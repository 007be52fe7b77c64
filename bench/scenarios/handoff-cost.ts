import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { serialize } from 'node:v8'
import { Bench } from 'tinybench'
import { type Codec, codecs, type WriterPool } from 'offload-store'
import { benchStateSchema, generateState } from '../data.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { median } from '../percentiles.js'

/** Main-thread cost of one save at one state size, next to what encoding it inline would cost. */
interface HandoffRow {
  readonly sizeBytes: number
  readonly actualBytes: number
  /** `JSON.stringify(state)` on the main thread, ms (tinybench p50): the inline cost with a cheap encoder. */
  readonly stringifyMs: number
  /** `v8.serialize(state)`, ms (tinybench p50): the serializer `postMessage` uses, measured alone. */
  readonly v8SerializeMs: number
  /** The store's own figure, `mainMs` of `offload-store:write:end` (median): the check and copy (JSON: the stringify) at write start, plus the post. */
  readonly handoffMs: number
  /** Synchronous duration of the `save()` call (median): the same work, seen from the caller. */
  readonly saveCallMs: number
  /** saveCallMs / stringifyMs: at 1 or more, offloading a JSON encode saves the main thread nothing. */
  readonly ratioToStringify: number
}

/** Main-thread ms per save of another codec, against JSON.stringify of the same value in the same run. */
interface CodecHandoffRow {
  readonly codec: string
  readonly sizeBytes: number
  readonly actualBytes: number
  /** Synchronous duration of the `save()` call (median). */
  readonly saveCallMs: number
  readonly stringifyMs: number
  /** saveCallMs / stringifyMs. */
  readonly ratioToStringify: number
}

/** The hand-off cost scenario. */
export interface HandoffResult {
  readonly kind: 'handoff-cost'
  readonly rows: readonly HandoffRow[]
  /** The other codecs (schema, module, gzip), when measured. */
  readonly codecRows?: readonly CodecHandoffRow[]
}

/** Options of {@link runHandoffCost}. */
export interface HandoffOptions {
  readonly dir: string
  readonly pool: WriterPool
  readonly sizes: readonly number[]
  /** tinybench time budget per task, ms. */
  readonly timePerTaskMs: number
  /** Measure the other codecs too (schema, module, gzip). */
  readonly everyCodec?: boolean
}

/** The codecs besides JSON whose main-thread share is a hand-off: their encoding runs in the worker. */
function otherCodecs (): Array<[string, Codec<unknown>]> {
  return [
    ['schema', codecs.schema(benchStateSchema, { largeArrayMechanism: 'json-stringify', largeArraySize: 20000 })],
    ['module', codecs.module(new URL('../codecs/light-codec.js', import.meta.url))],
    ['gzip(json)', codecs.gzip(codecs.json())]
  ]
}

async function callMs (saver: OffloadedSaver, state: unknown, iterations: number): Promise<number> {
  await saver.save(state) // warm: a ready worker takes the message at once, so the copy is inside the call.
  const calls: number[] = []
  for (let i = 0; i < iterations; i++) {
    const start = performance.now()
    const saving = saver.save(state)
    calls.push(performance.now() - start)
    await saving
  }
  return median(calls)
}

function p50 (bench: Bench, name: string): number {
  const result = bench.getTask(name)?.result
  if (result === undefined || !('latency' in result)) throw new Error(`tinybench task ${name} did not complete: ${JSON.stringify(result)}`)
  return result.latency.p50
}

async function measureSize (sizeBytes: number, options: HandoffOptions, codecRows: CodecHandoffRow[]): Promise<HandoffRow> {
  const state = generateState(sizeBytes, 11)
  const actualBytes = JSON.stringify(state).length
  // Fewer iterations for big states: a 15 MB stringify takes tens of ms.
  const iterations = actualBytes > 5_000_000 ? 5 : actualBytes > 500_000 ? 10 : 50
  const bench = new Bench({ time: options.timePerTaskMs, iterations, warmupIterations: 2, throws: true })
  bench.add('stringify', () => { JSON.stringify(state) })
  bench.add('v8.serialize', () => { serialize(state) })
  await bench.run()

  const saver = new OffloadedSaver(join(options.dir, `handoff-${sizeBytes}.json`), codecs.json(), options.pool)
  const calls: number[] = []
  try {
    await saver.save(state) // warm: a ready worker takes the message at once, so the clone is inside the call.
    const warm = saver.writes.length
    for (let i = 0; i < iterations; i++) {
      const start = performance.now()
      const saving = saver.save(state)
      calls.push(performance.now() - start)
      await saving
    }
    const handoffMs = median(saver.writes.slice(warm).flatMap((w) => w.mainMs === undefined ? [] : [w.mainMs]))
    const stringifyMs = p50(bench, 'stringify')
    const saveCallMs = median(calls)
    if (options.everyCodec === true) {
      for (const [codec, spec] of otherCodecs()) {
        const other = new OffloadedSaver(join(options.dir, `handoff-${codec}-${sizeBytes}.json`), spec, options.pool)
        try {
          const ms = await callMs(other, state, iterations)
          codecRows.push({ codec, sizeBytes, actualBytes, saveCallMs: ms, stringifyMs, ratioToStringify: ms / stringifyMs })
        } finally {
          await other.close()
        }
      }
    }
    return {
      sizeBytes,
      actualBytes,
      stringifyMs,
      v8SerializeMs: p50(bench, 'v8.serialize'),
      handoffMs,
      saveCallMs,
      ratioToStringify: saveCallMs / stringifyMs
    }
  } finally {
    await saver.close()
  }
}

/** Measures, per state size, the main-thread cost of `save()` against `JSON.stringify`. */
export async function runHandoffCost (options: HandoffOptions): Promise<HandoffResult> {
  const dir = join(options.dir, 'handoff')
  mkdirSync(dir, { recursive: true })
  const rows: HandoffRow[] = []
  const codecRows: CodecHandoffRow[] = []
  for (const size of options.sizes) rows.push(await measureSize(size, { ...options, dir }, codecRows))
  return { kind: 'handoff-cost', rows, ...(options.everyCodec === true ? { codecRows } : {}) }
}
