// `npm run demo`: one minute that shows what offloading buys. A server-like loop (a 1 ms timer)
// runs while a 500 KB state is saved every 20 ms through a realistic encoder (sorted-keys JSON,
// gzip level 9), in three modes, interleaved so the machine's noise falls on all of them alike:
//   idle       no saves: the floor of this machine right now
//   inline     the encoder runs on the main thread, the bytes go to the same Store (codecs.raw())
//   offloaded  the same encoder as codecs.module(): it runs in the worker
// Printed: event-loop delay (p50, p99, max) and the main thread's own CPU time per save: its thread
// CPU time in the window, less the idle windows' (the timer's own cost), per save.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { codecs, ShutdownRegistry, Store, WriterPool } from 'offload-store'
import { generateState, mutateState } from '../../bench/data.js'
import { encode } from './codec.js'

type Mode = 'idle' | 'inline' | 'offloaded'

const MODES: readonly Mode[] = ['idle', 'inline', 'offloaded']
const ROUNDS = Number(process.env['DEMO_ROUNDS'] ?? 4)
const WINDOW_MS = Number(process.env['DEMO_WINDOW_MS'] ?? 3000)
const SAVE_EVERY_MS = 20
const STATE_BYTES = 500_000

/** CPU time this thread has run, in ms (Linux); undefined elsewhere. */
function threadCpuMs (): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6
  } catch {
    return undefined
  }
}

interface Window { p50: number, p99: number, max: number, saves: number, cpuMs: number | undefined }

const dir = mkdtempSync(join(tmpdir(), 'offload-store-demo-'))
const shutdown = new ShutdownRegistry()
const pool = new WriterPool({ maxThreads: 1 })
// The store's warning about slow hand-offs is advice for servers; here it would interleave with the table.
const logger = { error: console.error, warn: () => {}, debug: () => {} }
const offloaded = new Store({ path: join(dir, 'offloaded.json.gz'), shutdownRegister: shutdown.register, pool, logger, codec: codecs.module(new URL('./codec.js', import.meta.url)) })
const inline = new Store({ path: join(dir, 'inline.json.gz'), shutdownRegister: shutdown.register, pool, logger, codec: codecs.raw() })
const state = generateState(STATE_BYTES)
let step = 0

async function window (mode: Mode): Promise<Window> {
  // The "server": a 1 ms timer doing a little request-sized work.
  const tick = setInterval(() => { JSON.parse(JSON.stringify({ id: step, ok: true })) }, 1)
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  let saves = 0
  const writes = new Set<Promise<void>>()
  const save = (): void => {
    mutateState(state, ++step)
    const writing = mode === 'offloaded' ? offloaded.save(state) : inline.save(encode(state))
    saves++
    const tracked = writing.finally(() => writes.delete(tracked))
    writes.add(tracked)
  }
  const saver = mode === 'idle' ? undefined : setInterval(save, SAVE_EVERY_MS)
  const cpuStart = threadCpuMs()
  histogram.enable()
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS))
  histogram.disable()
  clearInterval(saver)
  clearInterval(tick)
  // Writes still in flight belong to this window: their hand-off and result handling count too.
  await Promise.all(writes)
  const cpuEnd = threadCpuMs()
  const ms = (ns: number): number => ns / 1e6
  return {
    p50: ms(histogram.percentile(50)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
    saves,
    cpuMs: cpuStart === undefined || cpuEnd === undefined ? undefined : cpuEnd - cpuStart
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

console.log(`offload-store demo: a ${Math.round(JSON.stringify(state).length / 1000)} KB state saved every ${SAVE_EVERY_MS} ms through sorted-keys JSON + gzip -9,`)
console.log(`${ROUNDS} rounds of ${WINDOW_MS / 1000} s per mode, interleaved (about ${Math.round(ROUNDS * MODES.length * WINDOW_MS / 1000)} s)\n`)
// Warm up: start the worker, import the codec there, let V8 optimise the encoder on this thread.
await offloaded.save(state)
await inline.save(encode(state))

const results = new Map<Mode, Window[]>(MODES.map((mode) => [mode, []]))
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order, so no mode always runs right after another.
  for (let i = 0; i < MODES.length; i++) {
    const mode = MODES[(i + round) % MODES.length] as Mode
    results.get(mode)?.push(await window(mode))
    process.stdout.write('.')
  }
}
process.stdout.write('\n\n')

const fmt = (value: number | undefined): string => value === undefined ? 'n/a' : value.toFixed(2)
const idleCpuMs = median((results.get('idle') ?? []).map((w) => w.cpuMs ?? NaN))
const rows = MODES.map((mode) => {
  const windows = results.get(mode) ?? []
  const cpu = windows.map((w) => ((w.cpuMs ?? NaN) - idleCpuMs) / w.saves).filter((v) => Number.isFinite(v))
  return {
    mode,
    'loop p50 ms': fmt(median(windows.map((w) => w.p50))),
    'loop p99 ms': fmt(median(windows.map((w) => w.p99))),
    'loop max ms': fmt(Math.max(...windows.map((w) => w.max))),
    'saves/s': (windows.reduce((sum, w) => sum + w.saves, 0) / (windows.length * WINDOW_MS / 1000)).toFixed(0),
    'main-thread CPU per save ms': mode === 'idle' ? '' : fmt(cpu.length === 0 ? undefined : median(cpu))
  }
})
console.table(rows)
console.log('p50/p99: median of the rounds; max: the largest of them. Lower is better. The full benchmark suite is `npm run bench`.')

await shutdown.flush()
await Promise.all([offloaded.close(), inline.close()])
await pool.close()
rmSync(dir, { recursive: true, force: true })
