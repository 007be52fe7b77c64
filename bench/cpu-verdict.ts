import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'
import type { Codec } from 'offload-store'
import type { Library } from './builds.js'
import { bootstrapMedianInterval, decide, type Interval, medianOf, perLookConfidence } from './paired-stats.js'
import { seededRandom } from './seeded-random.js'
import { threadTimes, threadTimesSupported } from './thread-cpu.js'
import { nextTurn, withTimeLimit } from './time-limit.js'

// The gate's verdict: main-thread CPU time per awaited durable save, measured in short slices of a
// few saves each, interleaved with the slices it is compared with, in the same process. CPU time
// of the thread itself (not wall-clock latency) is what a slower main-thread path changes, and a
// background job on the other core barely moves it; pairing each slice with its neighbours
// cancels the drift of the machine's speed.

/** The CPU verdict's settings, from the `cpu` section of the gate config. */
export interface CpuSettings {
  /** Awaited saves (or reference operations) per slice. */
  readonly savesPerSlice: number
  /** Rounds before the first look at the interval. */
  readonly minRounds: number
  /** Rounds between looks. */
  readonly checkEvery: number
  /** Rounds at most; with `timeBudgetMs`, whichever comes first ends the run. */
  readonly maxRounds: number
  /** Wall-clock budget for the rounds, ms; past it the verdict is what the interval says, or inconclusive. */
  readonly timeBudgetMs: number
  /** Overall confidence of the interval, split over the planned looks. */
  readonly confidence: number
  readonly bootstrapResamples: number
  readonly seed: number
  /** With a base build: the candidate's CPU per save may be at most this multiple of the base's. */
  readonly maxRatioToBase: number
  /**
   * Without a base build, the budget a save's CPU must stay under: `cloneFactor` structured clones
   * of the same value (the serialization any hand-off to a thread needs) plus `hopFactor` bare
   * round trips of an empty message to a plain worker (the fixed cost of a thread hop), both
   * measured in the same rounds, so the budget scales with the machine.
   */
  readonly budget: { readonly cloneFactor: number, readonly hopFactor: number }
  /** A slice that takes longer than this fails the run as an error (a hang, not a slow save). */
  readonly sliceTimeoutMs: number
}

/** One store configuration to judge: a codec, built from the library under test (and from the base build). */
export interface CpuSubjectSpec {
  readonly name: string
  readonly codec: (lib: Library) => Codec<unknown>
  /**
   * Whether the budget ratio decides when there is no base build. A store that does more than a
   * hand-off on the main thread by design (the JSON codecs check the value first) has no budget
   * in clones; it is judged against a base build, and its budget ratio is reported. @defaultValue true
   */
  readonly budgetDecides?: boolean
}

/** The verdict on one subject. */
type Verdict = 'pass' | 'fail' | 'inconclusive'

/** One ratio, its per-round values and interval, against its limit. */
interface RatioFigures {
  /** What the subject is divided by. */
  readonly reference: 'base-build' | 'budget'
  readonly limit: number
  /** One ratio per round. */
  readonly perRound: readonly number[]
  readonly median: number
  readonly interval: Interval
  readonly decision: 'pass' | 'fail' | 'undecided'
}

/** What the CPU verdict measured for one subject. */
export interface CpuSubjectResult {
  readonly name: string
  /** Median main-thread CPU ms per awaited save, floor removed. */
  readonly cpuPerSaveMs: number
  /** The same for the base build, when one was given. */
  readonly baseCpuPerSaveMs?: number
  /** The ratio that decides: to the base build when there is one, else to the budget. */
  readonly deciding: RatioFigures
  /** The budget ratio when the base-build ratio decides (reported, not deciding). */
  readonly budget?: RatioFigures
  readonly verdict: Verdict
  /** Reported, not deciding (a budget ratio of a subject whose budget does not decide). */
  readonly advisory: boolean
}

/** The CPU verdict's result, as stored in the run's JSON under `cpu`. */
export interface CpuVerdictResult {
  readonly kind: 'cpu-per-save'
  readonly stateBytes: number
  readonly savesPerSlice: number
  readonly rounds: number
  readonly looks: number
  readonly elapsedMs: number
  readonly seed: number
  /** The base build's entry, when the candidate was compared with one. */
  readonly baseBuild?: string
  /** Median ms per operation of the reference arms, floor removed (the floor itself is raw). */
  readonly reference: {
    readonly floorMs: number
    readonly cloneMs: number
    readonly hopMs: number
    readonly budgetMs: number
    /** Whether the clone term of the budget outweighs the hops: when not, the budget is reported and does not decide. */
    readonly budgetApplies: boolean
  }
  /** Share of the measured slices' wall time the main thread waited on the run queue: the scheduler noise. */
  readonly runQueueWaitShare: number
  readonly subjects: readonly CpuSubjectResult[]
  readonly verdict: Verdict
}

/** What {@link runCpuVerdict} needs. */
export interface CpuVerdictOptions {
  readonly lib: Library
  readonly base?: { readonly lib: Library, readonly entry: string }
  readonly subjects: readonly CpuSubjectSpec[]
  /** The value every save writes, changed by `mutate` before each save. */
  readonly state: unknown
  readonly stateBytes: number
  readonly mutate: (step: number) => void
  readonly dir: string
  readonly settings: CpuSettings
  readonly onRound?: (round: number, elapsedMs: number) => void
}

interface SliceTimes { readonly runNs: number, readonly waitNs: number, readonly wallMs: number }

type Operation = () => Promise<void>

interface Arm {
  readonly id: string
  readonly op: Operation
  readonly perRound: number[]
}

// A bare worker that answers every message: the cheapest possible thread hop, no library involved.
const ECHO_WORKER = "const { parentPort } = require('node:worker_threads'); parentPort.on('message', () => { parentPort.postMessage(0) })"

function echoWorker (): { readonly roundTrip: (message: unknown) => Promise<void>, readonly terminate: () => Promise<number> } {
  const worker = new Worker(ECHO_WORKER, { eval: true })
  worker.unref()
  let pending: { resolve: () => void, reject: (err: unknown) => void } | undefined
  worker.on('message', () => { pending?.resolve() })
  worker.on('error', (err) => { pending?.reject(err) })
  return {
    roundTrip: async (message) => {
      await new Promise<void>((resolve, reject) => {
        pending = { resolve, reject }
        worker.postMessage(message)
      })
    },
    terminate: async () => await worker.terminate()
  }
}

/** The engine's full collection, exposed at run time when the process was not started with --expose-gc. */
function collector (): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** Runs the CPU verdict: rotated, interleaved slices until every subject is decided, the budget is spent, or `maxRounds`. */
export async function runCpuVerdict (options: CpuVerdictOptions): Promise<CpuVerdictResult> {
  if (!threadTimesSupported()) throw new Error('per-thread CPU time needs Linux /proc/thread-self/schedstat, which this system does not have')
  const { settings, mutate, state } = options
  let step = 0
  const echo = echoWorker()
  const builds = [{ tag: 'candidate', lib: options.lib }, ...(options.base === undefined ? [] : [{ tag: 'base', lib: options.base.lib }])]
  const pools = builds.map(({ lib }) => new lib.WriterPool({ maxThreads: 1, idleTimeout: 120_000 }))
  const stores: Array<{ close: () => Promise<void> }> = []
  try {
    const arms: Arm[] = [
      { id: 'floor', perRound: [], op: async () => { mutate(++step); await nextTurn() } },
      { id: 'clone', perRound: [], op: async () => { mutate(++step); structuredClone(state); await nextTurn() } },
      { id: 'hop', perRound: [], op: async () => { mutate(++step); await echo.roundTrip(0); await nextTurn() } }
    ]
    for (const [b, { tag, lib }] of builds.entries()) {
      const pool = pools[b] as InstanceType<Library['WriterPool']>
      for (const [s, subject] of options.subjects.entries()) {
        const registry = new lib.ShutdownRegistry()
        // Every save is a real write (no skipping of unchanged bytes) and warns nowhere.
        const store = new lib.Store<unknown>({ path: join(options.dir, `cpu-${tag}-${s}.json`), codec: subject.codec(lib), pool, shutdownRegister: registry.register, skipUnchanged: false, handoffWarnMs: Infinity })
        stores.push(store)
        await withTimeLimit(`the first save of ${subject.name} (${tag})`, settings.sliceTimeoutMs, store.save(state))
        // nextTurn after each save: a save that resolves in microtasks must not starve the timers.
        arms.push({ id: `${tag}:${s}`, perRound: [], op: async () => { mutate(++step); await store.save(state); await nextTurn() } })
      }
    }
    await withTimeLimit('the first round trip to a bare worker', settings.sliceTimeoutMs, echo.roundTrip(0))

    const slice = async (arm: Arm): Promise<SliceTimes> => {
      const before = threadTimes()
      const started = performance.now()
      for (let i = 0; i < settings.savesPerSlice; i++) await arm.op()
      const after = threadTimes()
      return { runNs: after.runNs - before.runNs, waitNs: after.waitNs - before.waitNs, wallMs: performance.now() - started }
    }
    const runSlice = async (arm: Arm): Promise<SliceTimes> => await withTimeLimit(`a slice of ${settings.savesPerSlice} operations (${arm.id})`, settings.sliceTimeoutMs, slice(arm))

    // One warm round, not recorded: JIT, first allocations, the codec modules' first calls.
    for (const arm of arms) await runSlice(arm)

    const looks = Math.floor((settings.maxRounds - settings.minRounds) / settings.checkEvery) + 2
    const lookConfidence = perLookConfidence(settings.confidence, looks)
    let waitNs = 0
    let wallMs = 0
    let rounds = 0
    let budgetApplies = true
    let judged = judge()
    const started = performance.now()
    const gc = collector()
    const shuffle = seededRandom(settings.seed ^ 0x5bd1e995)
    while (rounds < settings.maxRounds && performance.now() - started < settings.timeBudgetMs) {
      // A fresh order each round (seeded): with a fixed or rotated order every arm keeps the same
      // neighbour, and the garbage one arm leaves is collected, and charged, in the arm after it.
      const order = [...arms]
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(shuffle() * (i + 1))
        const held = order[i] as Arm
        order[i] = order[j] as Arm
        order[j] = held
      }
      for (const arm of order) {
        gc() // a full collection before each slice, so no slice pays for another's garbage
        const times = await runSlice(arm)
        arm.perRound.push(times.runNs / settings.savesPerSlice / 1e6)
        waitNs += times.waitNs
        wallMs += times.wallMs
      }
      rounds++
      options.onRound?.(rounds, performance.now() - started)
      if (rounds >= settings.minRounds && (rounds - settings.minRounds) % settings.checkEvery === 0) {
        judged = judge()
        if (judged.every((subject) => subject.advisory || subject.verdict !== 'inconclusive')) break
      }
    }
    if (rounds < settings.minRounds || (rounds - settings.minRounds) % settings.checkEvery !== 0) judged = judge()
    const elapsedMs = performance.now() - started

    function judge (): CpuSubjectResult[] {
      const arm = (id: string): number[] => arms.find((a) => a.id === id)?.perRound ?? []
      const floor = arm('floor')
      const net = (values: readonly number[]): number[] => values.map((v, r) => Math.max(1e-6, v - (floor[r] ?? 0)))
      const clone = net(arm('clone'))
      const hop = net(arm('hop'))
      const budget = clone.map((c, r) => settings.budget.cloneFactor * c + settings.budget.hopFactor * (hop[r] ?? 0))
      const figures = (reference: RatioFigures['reference'], limit: number, cost: readonly number[], by: readonly number[]): RatioFigures => {
        const perRound = cost.map((c, r) => c / (by[r] ?? Number.NaN))
        const interval = bootstrapMedianInterval(perRound, lookConfidence, settings.bootstrapResamples, settings.seed)
        return { reference, limit, perRound, median: medianOf(perRound), interval, decision: perRound.length === 0 ? 'undecided' : decide(interval, limit) }
      }
      // A state whose clone costs less than the hops has no budget to speak of: the store's fixed
      // cost per save (about 0.15 ms here) exceeds it whatever the codec does, so the budget
      // cannot decide (measured: a 2 KB sample failed 2 runs of 3 on an unchanged store).
      budgetApplies = settings.budget.cloneFactor * medianOf(clone) >= settings.budget.hopFactor * medianOf(hop)
      return options.subjects.map((subject, s) => {
        const cost = net(arm(`candidate:${s}`))
        const budgetFigures = figures('budget', 1, cost, budget)
        let deciding = budgetFigures
        let baseCost: number[] | undefined
        if (options.base !== undefined) {
          baseCost = net(arm(`base:${s}`))
          deciding = figures('base-build', settings.maxRatioToBase, cost, baseCost)
        }
        const verdict: Verdict = deciding.decision === 'undecided' ? 'inconclusive' : deciding.decision
        return {
          name: subject.name,
          advisory: options.base === undefined && (subject.budgetDecides === false || !budgetApplies),
          cpuPerSaveMs: medianOf(cost),
          ...(baseCost === undefined ? {} : { baseCpuPerSaveMs: medianOf(baseCost), budget: budgetFigures }),
          deciding,
          verdict
        }
      })
    }

    const floor = arms.find((a) => a.id === 'floor')?.perRound ?? []
    const netMedian = (id: string): number => medianOf((arms.find((a) => a.id === id)?.perRound ?? []).map((v, r) => v - (floor[r] ?? 0)))
    const cloneMs = netMedian('clone')
    const hopMs = netMedian('hop')
    const decidingSubjects = judged.filter((s) => !s.advisory)
    const verdict: Verdict = decidingSubjects.some((s) => s.verdict === 'fail') ? 'fail' : decidingSubjects.every((s) => s.verdict === 'pass') ? 'pass' : 'inconclusive'
    return {
      kind: 'cpu-per-save',
      stateBytes: options.stateBytes,
      savesPerSlice: settings.savesPerSlice,
      rounds,
      looks,
      elapsedMs,
      seed: settings.seed,
      ...(options.base === undefined ? {} : { baseBuild: options.base.entry }),
      reference: { floorMs: medianOf(floor), cloneMs, hopMs, budgetMs: settings.budget.cloneFactor * cloneMs + settings.budget.hopFactor * hopMs, budgetApplies },
      runQueueWaitShare: wallMs === 0 ? 0 : waitNs / 1e6 / wallMs,
      subjects: judged,
      verdict
    }
  } finally {
    // Bounded: after a timed-out slice the store's write may never finish, and close() waits for it.
    const closeLimitMs = Math.min(5000, settings.sliceTimeoutMs)
    await Promise.allSettled(stores.map(async (store) => { await withTimeLimit('closing a store', closeLimitMs, store.close()) }))
    await Promise.allSettled(pools.map(async (pool) => { await withTimeLimit('closing a pool', closeLimitMs, pool.close()) }))
    await echo.terminate()
  }
}
