import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { WriterPool } from 'offload-store'
import type { BenchEncoder } from '../encoders.js'
import { InlineSaver } from '../inline-saver.js'
import { combineLoopStats, type LoopStats, startLoopMonitor } from '../loop-monitor.js'
import { type MemoryFigures, memorySnapshot } from '../memory.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { type Spread, spreadOf } from '../percentiles.js'
import type { Saver, WriteSample } from '../saver.js'
import { startWorkload } from '../workload.js'

/** How the workload saves: a `save()` every 10 ms, or a `delaySave()` storm with a 100 ms window. */
export type LoadPattern = 'save-10ms' | 'delay-storm'

/** The three modes measured side by side. */
type Mode = 'idle' | 'inline' | 'offloaded'

/** The parameters of one loop-latency scenario. */
export interface LoopLatencyParams {
  readonly name: string
  /** Requested state size in bytes of JSON. */
  readonly sizeBytes: number
  /** Actual `JSON.stringify` length of the generated state. */
  readonly actualBytes: number
  readonly encoder: string
  readonly pattern: LoadPattern
  /** Measured time per mode, ms, split into `rounds` windows. */
  readonly durationMs: number
  /** Rounds of idle, inline and offloaded windows, interleaved. */
  readonly rounds: number
}

/** What one mode measured. */
export interface ModeFigures {
  readonly loop: LoopStats
  /** Requests the workload served in the window (a blocked loop serves fewer). */
  readonly requests: number
  /** Durable writes in the window. */
  readonly writes: number
  /** Call to durable for `save()`; deadline to durable for the storm. */
  readonly saveLatency: Spread
  /** Main-thread ms per write: encoding inline, handing the value to the worker offloaded. */
  readonly mainPerWrite: Spread
  readonly memory: MemoryFigures
}

/** One loop-latency scenario: the same workload in each mode. */
export interface LoopLatencyResult {
  readonly kind: 'loop-latency'
  readonly params: LoopLatencyParams
  readonly modes: Readonly<Record<Mode, ModeFigures>>
}

/** What a loop-latency scenario needs from the driver. */
export interface LoopLatencyContext {
  readonly encoder: BenchEncoder
  /** The value every save writes; mutated in place between saves by `mutate`. */
  readonly state: unknown
  /** Changes `state` as a request would; a no-op for a user's sample of unknown shape. */
  readonly mutate: (step: number) => void
  readonly dir: string
  readonly pool: WriterPool
  /** Makes a mode's saver instead of the file savers (the PostgreSQL scenario writes rows). */
  readonly saverFor?: (mode: 'inline' | 'offloaded', path: string) => Saver
}

const SAVE_EVERY_MS = 10
const STORM_DELAY_MS = 100
/** Mutations (each with a delaySave) per workload request: about 3000 a second during a burst. */
const STORM_MUTATIONS_PER_TICK = 3
// Every delaySave() moves the deadline (the latest wins), so a storm that never pauses never writes.
// Bursts with quiet gaps longer than the window give one write per burst, as a real server would.
const STORM_BURST_MS = 150
const STORM_GAP_MS = 150

function makeSaver (mode: Mode, path: string, context: LoopLatencyContext): Saver | undefined {
  switch (mode) {
    case 'idle': return undefined
    case 'inline': return context.saverFor?.(mode, path) ?? new InlineSaver(path, context.encoder)
    case 'offloaded': return context.saverFor?.(mode, path) ?? new OffloadedSaver(path, context.encoder.codec, context.pool)
    default: throw new Error(`unknown mode ${JSON.stringify(mode as unknown)}: this should not happen`)
  }
}

/** What one measured window of one mode saw, before rounds are combined. */
interface Window {
  readonly loop: LoopStats
  readonly requests: number
  readonly writes: readonly WriteSample[]
  readonly callToDurable: readonly number[]
  readonly memory: MemoryFigures
}

async function runWindow (mode: Mode, params: LoopLatencyParams, context: LoopLatencyContext, durationMs: number): Promise<Window> {
  const { state, mutate } = context
  const saver = makeSaver(mode, join(context.dir, `${params.name.replaceAll('/', '-')}-${mode}.json`), context)
  // Warm up outside the window: start the worker, import the codec module, compile the schema.
  if (saver !== undefined) await saver.save(state)
  const warmWrites = saver?.writes.length ?? 0
  const callToDurable: number[] = []
  const failures: unknown[] = []
  let step = 0

  const monitor = startLoopMonitor()
  const windowStart = performance.now()
  const workload = params.pattern === 'delay-storm'
    ? startWorkload((): void => {
      if ((performance.now() - windowStart) % (STORM_BURST_MS + STORM_GAP_MS) >= STORM_BURST_MS) return
      for (let i = 0; i < STORM_MUTATIONS_PER_TICK; i++) {
        mutate(++step)
        saver?.delaySave(() => state, STORM_DELAY_MS)
      }
    })
    : startWorkload()
  const saving = params.pattern === 'save-10ms'
    ? setInterval(() => {
      mutate(++step)
      if (saver === undefined) return
      const start = performance.now()
      saver.save(state).then(() => { callToDurable.push(performance.now() - start) }, (err: unknown) => { failures.push(err) })
    }, SAVE_EVERY_MS)
    : undefined
  await sleep(durationMs)
  clearInterval(saving)
  const requests = workload.stop()
  const loop = monitor.stop()

  await saver?.close()
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} saves failed in ${params.name} (${mode})`)
  return { loop, requests, writes: saver?.writes.slice(warmWrites) ?? [], callToDurable, memory: memorySnapshot() }
}

function combine (pattern: LoadPattern, windows: readonly Window[]): ModeFigures {
  const writes = windows.flatMap((w) => w.writes)
  const last = windows.at(-1)
  if (last === undefined) throw new Error('no window was measured: this should not happen')
  return {
    loop: combineLoopStats(windows.map((w) => w.loop)),
    requests: windows.reduce((sum, w) => sum + w.requests, 0),
    writes: writes.length,
    saveLatency: pattern === 'save-10ms' ? spreadOf(windows.flatMap((w) => w.callToDurable)) : spreadOf(writes.map((w) => w.totalMs)),
    mainPerWrite: spreadOf(writes.flatMap((w) => w.mainMs === undefined ? [] : [w.mainMs])),
    memory: last.memory
  }
}

const MODES: readonly Mode[] = ['idle', 'inline', 'offloaded']

/**
 * Runs idle, inline and offloaded on the same state and workload, in `params.rounds` short rounds
 * with the order rotated each round: the machine's background load drifts, and a mode measured
 * seconds after the idle floor would otherwise be judged against a different machine.
 */
export async function runLoopLatency (params: LoopLatencyParams, context: LoopLatencyContext): Promise<LoopLatencyResult> {
  const windows: Record<Mode, Window[]> = { idle: [], inline: [], offloaded: [] }
  const windowMs = Math.max(100, Math.round(params.durationMs / params.rounds))
  for (let round = 0; round < params.rounds; round++) {
    for (let i = 0; i < MODES.length; i++) {
      const mode = MODES[(round + i) % MODES.length] as Mode
      windows[mode].push(await runWindow(mode, params, context, windowMs))
    }
  }
  return {
    kind: 'loop-latency',
    params,
    modes: { idle: combine(params.pattern, windows.idle), inline: combine(params.pattern, windows.inline), offloaded: combine(params.pattern, windows.offloaded) }
  }
}
