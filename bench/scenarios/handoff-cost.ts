import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { serialize } from 'node:v8'
import { Bench } from 'tinybench'
import { type Codec, codecs, type WriterPool } from 'offload-store'
import { benchStateSchema, generateState } from '../data.js'
import { FloorWorker } from '../floor-hop.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { median } from '../percentiles.js'

/** Main-thread cost of one save at one state size, next to what encoding it inline would cost, and the floors of the design. */
interface HandoffRow {
  readonly sizeBytes: number
  readonly actualBytes: number
  /** `JSON.stringify(state)` on the main thread, ms (median of the samples taken beside each save): the inline cost with a cheap encoder. */
  readonly stringifyMs: number
  /** `v8.serialize(state)`, ms (tinybench p50): the serializer `postMessage` uses, measured alone. */
  readonly v8SerializeMs: number
  /** The store's own figure, `mainMs` of `offload-store:write:end` (median): the check and copy (JSON: the stringify) at write start, plus the post. */
  readonly handoffMs: number
  /** Synchronous duration of the `save()` call (median): the same work, seen from the caller. */
  readonly saveCallMs: number
  /**
   * Median of per-save ratios, each save's call time over a JSON.stringify of the same state timed
   * beside it: at 1 or more, offloading a JSON encode saves the main thread nothing.
   */
  readonly ratioToStringify: number
  /** What designs without this library's extra steps cost the main thread, timed in the same alternation, when measured. */
  readonly floors?: HandoffFloors
}

/** One floor: its main-thread ms per call (median) and the median of per-call ratios to a JSON.stringify timed beside it. */
interface FloorFigure {
  readonly ms: number
  readonly ratioToStringify: number
}

/** The floors of the design at one state size, each timed beside a JSON.stringify like `save()`. */
export interface HandoffFloors {
  /** `JSON.stringify(state)` then `postMessage(text)` to a raw worker that drops it: the least any stringify-on-main offload costs. */
  readonly stringifyPost: FloorFigure
  /** `postMessage(state)` (a structured clone) to that worker: what a clone-and-encode-in-the-worker design costs when it posts the value as is. */
  readonly clonePost: FloorFigure
  /**
   * `v8.serialize(state)` then a post that transfers the bytes: the least a clone-and-encode-in-the-worker
   * design costs (postMessage's own serializer is slower than v8.serialize). This library's schema and
   * module codecs hand off this way.
   */
  readonly serializeTransfer: FloorFigure
  /** `save()` under `codecs.json({ lossy: true })`: this library without the fidelity check. */
  readonly lossy: FloorFigure
}

/** Main-thread ms per save of another codec, against JSON.stringify of the same value in the same run. */
interface CodecHandoffRow {
  readonly codec: string
  readonly sizeBytes: number
  readonly actualBytes: number
  /** Synchronous duration of the `save()` call (median). */
  readonly saveCallMs: number
  readonly stringifyMs: number
  /** Median of per-save ratios to a JSON.stringify timed beside each save. */
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
  /** Time the floors of the design beside every save() (see {@link HandoffFloors}). @defaultValue true */
  readonly floors?: boolean
}

/** The codecs besides JSON whose main-thread share is a hand-off: their encoding runs in the worker. */
function otherCodecs (): Array<[string, Codec<unknown>]> {
  return [
    ['schema', codecs.schema(benchStateSchema, { largeArrayMechanism: 'json-stringify', largeArraySize: 20000 })],
    ['module', codecs.module(new URL('../codecs/light-codec.js', import.meta.url))],
    ['gzip(json)', codecs.gzip(codecs.json())]
  ]
}

/** Calls of one arm and JSON.stringify calls of the same state, timed in alternation (ms). */
interface PairedCalls {
  readonly calls: number[]
  readonly stringifies: number[]
  /** Each call over the stringify timed beside it. */
  readonly ratios: number[]
}

/**
 * A timed call: its synchronous part is what the main thread pays (a save() call, a post); the
 * promise it returns is awaited outside the timing, so one call's write never overlaps the next.
 */
type Arm = () => Promise<unknown>

/**
 * Times `iterations` calls of each arm, each beside a JSON.stringify of the same state, which comes
 * first on even iterations and second on odd ones: on a shared machine the CPU's speed drifts
 * within seconds, and a ratio of two figures taken apart would measure the drift. The arms take
 * turns inside every iteration, their order rotated, so the floors and save() share the drift too.
 */
async function pairedCalls (arms: readonly Arm[], state: unknown, iterations: number): Promise<PairedCalls[]> {
  // Warm: a ready worker takes the message at once, so the copy is inside the call.
  for (const arm of arms) await arm()
  const paired = arms.map((): PairedCalls => ({ calls: [], stringifies: [], ratios: [] }))
  const stringify = (into: number[]): void => {
    const start = performance.now()
    JSON.stringify(state)
    into.push(performance.now() - start)
  }
  for (let i = 0; i < iterations; i++) {
    for (let k = 0; k < arms.length; k++) {
      const a = (i + k) % arms.length
      const arm = arms[a] as Arm
      const { calls, stringifies } = paired[a] as PairedCalls
      if (i % 2 === 0) stringify(stringifies)
      const start = performance.now()
      const done = arm()
      calls.push(performance.now() - start)
      await done
      if (i % 2 === 1) stringify(stringifies)
    }
  }
  for (const { calls, stringifies, ratios } of paired) ratios.push(...calls.map((call, i) => call / (stringifies[i] ?? NaN)))
  return paired
}

/** The bytes and their transfer list, as the store sends a copy: a buffer of its own moves; a view into a larger one is copied first. */
function ownedBytes (bytes: Uint8Array): [Uint8Array, ArrayBuffer[]] {
  const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : new Uint8Array(bytes)
  return [owned, [owned.buffer as ArrayBuffer]]
}

const figure = (paired: PairedCalls): FloorFigure => ({ ms: median(paired.calls), ratioToStringify: median(paired.ratios) })

function p50 (bench: Bench, name: string): number {
  const result = bench.getTask(name)?.result
  if (result === undefined || !('latency' in result)) throw new Error(`tinybench task ${name} did not complete: ${JSON.stringify(result)}`)
  return result.latency.p50
}

async function measureSize (sizeBytes: number, options: HandoffOptions & { readonly drop: FloorWorker | undefined }, codecRows: CodecHandoffRow[]): Promise<HandoffRow> {
  const state = generateState(sizeBytes, 11)
  const actualBytes = JSON.stringify(state).length
  // Fewer iterations for big states: a 15 MB stringify takes tens of ms.
  const iterations = actualBytes > 5_000_000 ? 7 : actualBytes > 500_000 ? 15 : 51
  const bench = new Bench({ time: options.timePerTaskMs, iterations, warmupIterations: 2, throws: true })
  bench.add('v8.serialize', () => { serialize(state) })
  await bench.run()

  const saver = new OffloadedSaver(join(options.dir, `handoff-${sizeBytes}.json`), codecs.json(), options.pool)
  const drop = options.drop
  const lossy = drop === undefined ? undefined : new OffloadedSaver(join(options.dir, `handoff-lossy-${sizeBytes}.json`), codecs.json({ lossy: true }), options.pool)
  try {
    const arms: Arm[] = [async () => await saver.save(state)]
    if (drop !== undefined && lossy !== undefined) {
      arms.push(
        async () => await drop.post(JSON.stringify(state)),
        async () => await drop.post(state),
        async () => await drop.post(...ownedBytes(serialize(state))),
        async () => await lossy.save(state)
      )
    }
    const warm = saver.writes.length + 1
    const [json, stringifyPost, clonePost, serializeTransfer, lossySave] = await pairedCalls(arms, state, iterations) as [PairedCalls, ...Array<PairedCalls | undefined>]
    const handoffMs = median(saver.writes.slice(warm).flatMap((w) => w.mainMs === undefined ? [] : [w.mainMs]))
    if (options.everyCodec === true) {
      for (const [codec, spec] of otherCodecs()) {
        const other = new OffloadedSaver(join(options.dir, `handoff-${codec}-${sizeBytes}.json`), spec, options.pool)
        try {
          const [paired] = await pairedCalls([async () => await other.save(state)], state, iterations) as [PairedCalls]
          codecRows.push({ codec, sizeBytes, actualBytes, saveCallMs: median(paired.calls), stringifyMs: median(paired.stringifies), ratioToStringify: median(paired.ratios) })
        } finally {
          await other.close()
        }
      }
    }
    return {
      sizeBytes,
      actualBytes,
      stringifyMs: median(json.stringifies),
      v8SerializeMs: p50(bench, 'v8.serialize'),
      handoffMs,
      saveCallMs: median(json.calls),
      ratioToStringify: median(json.ratios),
      ...(stringifyPost === undefined || clonePost === undefined || serializeTransfer === undefined || lossySave === undefined
        ? {}
        : { floors: { stringifyPost: figure(stringifyPost), clonePost: figure(clonePost), serializeTransfer: figure(serializeTransfer), lossy: figure(lossySave) } })
    }
  } finally {
    await saver.close()
    await lossy?.close()
  }
}

/** Measures, per state size, the main-thread cost of `save()` against `JSON.stringify`. */
export async function runHandoffCost (options: HandoffOptions): Promise<HandoffResult> {
  const dir = join(options.dir, 'handoff')
  mkdirSync(dir, { recursive: true })
  const rows: HandoffRow[] = []
  const codecRows: CodecHandoffRow[] = []
  // One raw worker that answers every message and keeps nothing: the far side of the floors' posts.
  const drop = options.floors === false ? undefined : new FloorWorker({ kind: 'drop' })
  try {
    for (const size of options.sizes) rows.push(await measureSize(size, { ...options, dir, drop }, codecRows))
  } finally {
    await drop?.close()
  }
  return { kind: 'handoff-cost', rows, ...(options.everyCodec === true ? { codecRows } : {}) }
}
