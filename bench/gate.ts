import { readFileSync } from 'node:fs'
import { requireNumbers } from './config-check.js'
import type { CpuSettings, CpuVerdictResult } from './cpu-verdict.js'
import type { RunResult } from './run-result.js'
import type { LoopLatencyParams } from './scenarios/loop-latency.js'
import { checkTargetsConfig, type TargetsConfig, targetRows } from './targets.js'
import { flagsDiffer, machineLabel } from './machine.js'

/** The thresholds in `bench/gate.config.json`. Every rule compares figures taken in the same run. */
export interface GateConfig {
  /** The deciding rule: main-thread CPU per save, paired (see docs/ci-gate.md). */
  readonly cpu?: CpuSettings & {
    /** State size the suite's CPU verdict saves, bytes of JSON. */
    readonly stateBytes: number
    /** With `--baseline`: the budget ratio may grow by at most this percentage over the stored run's. */
    readonly maxRegressionPercent: number
  }
  readonly loopLatency: {
    /** Reported, not deciding: the checks are listed, their failure does not fail the gate. */
    readonly advisory?: boolean
    /** Which loop-latency scenarios the rules judge: the heavy encoder at the sizes where offloading is the point. */
    readonly appliesTo: { readonly encoders: readonly string[], readonly maxStateBytes: number }
    /** Offloaded p99 loop delay may exceed idle p99 by at most this, ms. */
    readonly maxP99AboveIdleMs: number
    /** Offloaded p99 must stay below this fraction of inline p99. */
    readonly maxP99RatioToInline: number
    /**
     * The ratio rule applies only when inline p99 exceeds idle p99 by more than this, ms: when even
     * inline does not block the loop there is nothing to beat, and the ratio of two floors is noise.
     */
    readonly ratioOnlyWhenInlineAboveIdleMs: number
  }
  readonly throughput: {
    /** Reported, not deciding. */
    readonly advisory?: boolean
    /** Durable `save()` throughput must stay above this fraction of the bare fsync loop. */
    readonly minRatioToBare: number
  }
  /** Targets for a large keyed state (judged only when the run has the keyed scenario). */
  readonly keyed?: {
    /** Keyed p99 loop delay may exceed idle p99 by at most this, ms. */
    readonly maxP99AboveIdleMs: number
    /** Longest single loop delay while saving, ms. */
    readonly maxLoopMaxMs: number
    /** Main-thread ms per save must stay below this fraction of handing the whole state over. */
    readonly maxMainRatioToWhole: number
    /** A one-entry change at 10x the entries may cost at most this many times as much. */
    readonly maxOneEntryScaling: number
    /** Sequential durable journal saves per second, at least. */
    readonly journalMinSavesPerSec: number
    /** Journal-mode p99 loop delay may exceed idle p99 by at most this, ms. */
    readonly journalMaxP99AboveIdleMs: number
  }
  /** The project's performance targets, each figure of the report beside its limit (advisory in the gate). */
  readonly targets?: TargetsConfig
  readonly baseline: {
    /** With `--baseline`, a figure may worsen by at most this percentage. */
    readonly maxRegressionPercent: number
    /** Millisecond figures may also worsen by this much, so a 0.2 → 0.4 ms change is not a failure. */
    readonly slackMs: number
  }
}

/** A gate's outcome: `inconclusive` when the figures could not be told apart from the limit in the time allowed. */
export type GateStatus = 'pass' | 'fail' | 'inconclusive'

/** One rule applied to one figure. */
export interface GateCheck {
  readonly name: string
  readonly pass: boolean
  /** Like `pass`, with `inconclusive` for an interval that straddles the limit. @defaultValue from `pass` */
  readonly status?: GateStatus
  /** Reported only: its failure does not fail the gate. */
  readonly advisory?: boolean
  /** What to do when the check fails. */
  readonly advice?: string
  readonly actual: number
  readonly limit: number
  /** The rule in words, with the figures. */
  readonly detail: string
}

/** The gate's verdict. */
export interface GateVerdict {
  /** `status === 'pass'`. */
  readonly pass: boolean
  readonly status: GateStatus
  readonly checks: readonly GateCheck[]
}

/** The status of one check. */
export function checkStatus (check: GateCheck): GateStatus {
  return check.status ?? (check.pass ? 'pass' : 'fail')
}

/** The verdict of a list of checks: any deciding failure fails; else any deciding inconclusive check is inconclusive. */
function verdictOf (checks: readonly GateCheck[]): GateVerdict {
  const deciding = checks.filter((check) => check.advisory !== true).map(checkStatus)
  const status: GateStatus = deciding.includes('fail') ? 'fail' : deciding.includes('inconclusive') ? 'inconclusive' : 'pass'
  return { pass: status === 'pass', status, checks }
}

/** Exit codes of the gate and of `offload-store-bench`. */
export const EXIT = { pass: 0, fail: 1, error: 2, inconclusive: 3 } as const

/** Options of {@link evaluateGate}. */
export interface GateOptions {
  /** A previous run to compare with. */
  readonly baseline?: RunResult
  /** Judges these scenarios instead of `config.loopLatency.appliesTo` (the user bin judges its own). */
  readonly scenarioFilter?: (params: LoopLatencyParams) => boolean
  /** Fail when the result has no throughput figures. @defaultValue true */
  readonly requireThroughput?: boolean
  /** Whether the CPU checks decide (false: reported only). @defaultValue true */
  readonly cpuDecides?: boolean
  /** Judge only against the baseline: the CPU comparison with it decides, the absolute rules are reported. */
  readonly baselineOnly?: boolean
  /** Only the CPU checks (a run that measured nothing else). */
  readonly cpuOnly?: boolean
}

/** Reads and checks a gate config file. */
export function readGateConfig (path: string | URL): GateConfig {
  const config = JSON.parse(readFileSync(path, 'utf8')) as GateConfig
  const numbers: Array<[string, unknown]> = [
    ['loopLatency.appliesTo.maxStateBytes', config.loopLatency?.appliesTo?.maxStateBytes],
    ['loopLatency.maxP99AboveIdleMs', config.loopLatency?.maxP99AboveIdleMs],
    ['loopLatency.maxP99RatioToInline', config.loopLatency?.maxP99RatioToInline],
    ['loopLatency.ratioOnlyWhenInlineAboveIdleMs', config.loopLatency?.ratioOnlyWhenInlineAboveIdleMs],
    ['throughput.minRatioToBare', config.throughput?.minRatioToBare],
    ['baseline.maxRegressionPercent', config.baseline?.maxRegressionPercent],
    ['baseline.slackMs', config.baseline?.slackMs]
  ]
  requireNumbers('', numbers)
  const cpu = config.cpu
  if (cpu !== undefined) {
    const cpuNumbers: Array<[string, unknown, number]> = [
      ['stateBytes', cpu.stateBytes, 1], ['savesPerSlice', cpu.savesPerSlice, 1], ['minRounds', cpu.minRounds, 3], ['checkEvery', cpu.checkEvery, 1],
      ['maxRounds', cpu.maxRounds, cpu.minRounds], ['timeBudgetMs', cpu.timeBudgetMs, 1], ['bootstrapResamples', cpu.bootstrapResamples, 100],
      ['seed', cpu.seed, 0], ['maxRatioToBase', cpu.maxRatioToBase, 1], ['budget.cloneFactor', cpu.budget?.cloneFactor, 0],
      ['budget.hopFactor', cpu.budget?.hopFactor, 0], ['sliceTimeoutMs', cpu.sliceTimeoutMs, 1], ['maxRegressionPercent', cpu.maxRegressionPercent, 0]
    ]
    requireNumbers('cpu.', cpuNumbers)
    if (typeof cpu.confidence !== 'number' || !(cpu.confidence > 0.5 && cpu.confidence < 1)) throw new TypeError(`gate config cpu.confidence must be a number between 0.5 and 1, got ${String(cpu.confidence)}`)
  }
  if (config.targets !== undefined) checkTargetsConfig(config.targets)
  if (!Array.isArray(config.loopLatency.appliesTo.encoders)) throw new TypeError('gate config loopLatency.appliesTo.encoders must be an array of encoder names')
  return config
}

const fmt = (n: number): string => n.toFixed(2)

function loopChecks (result: RunResult, config: GateConfig, filter: (params: LoopLatencyParams) => boolean): GateCheck[] {
  const rules = config.loopLatency
  const judged = result.loopLatency.filter((scenario) => filter(scenario.params))
  if (judged.length === 0) {
    return [{ name: 'loop-latency: scenarios judged', pass: false, actual: 0, limit: 1, detail: 'no loop-latency scenario in the result matches the gate; nothing proves the loop stays free' }]
  }
  const checks: GateCheck[] = []
  for (const { params, modes } of judged) {
    const idle = modes.idle.loop.p99Ms
    const inline = modes.inline.loop.p99Ms
    const offloaded = modes.offloaded.loop.p99Ms
    const above = offloaded - idle
    checks.push({
      name: `${params.name}: offloaded p99 - idle p99`,
      pass: above <= rules.maxP99AboveIdleMs,
      actual: above,
      limit: rules.maxP99AboveIdleMs,
      detail: `offloaded p99 ${fmt(offloaded)} ms is ${fmt(above)} ms above idle ${fmt(idle)} ms (limit ${rules.maxP99AboveIdleMs} ms)`
    })
    if (inline - idle > rules.ratioOnlyWhenInlineAboveIdleMs) {
      const ratio = offloaded / inline
      checks.push({
        name: `${params.name}: offloaded p99 / inline p99`,
        pass: ratio < rules.maxP99RatioToInline,
        actual: ratio,
        limit: rules.maxP99RatioToInline,
        detail: `offloaded p99 ${fmt(offloaded)} ms is ${fmt(ratio)} of inline ${fmt(inline)} ms (must be below ${rules.maxP99RatioToInline})`
      })
    }
  }
  return checks
}

function throughputChecks (result: RunResult, config: GateConfig, required: boolean): GateCheck[] {
  const throughput = result.throughput
  if (throughput === undefined) {
    return required ? [{ name: 'throughput: save()/bare', pass: false, actual: 0, limit: config.throughput.minRatioToBare, detail: 'the result has no throughput figures' }] : []
  }
  return [{
    name: 'throughput: save()/bare',
    pass: throughput.ratio > config.throughput.minRatioToBare,
    actual: throughput.ratio,
    limit: config.throughput.minRatioToBare,
    detail: `${throughput.saveOpsPerSec.toFixed(0)} durable save()/s is ${fmt(throughput.ratio)} of the bare fsync loop's ${throughput.bareOpsPerSec.toFixed(0)}/s (must be above ${config.throughput.minRatioToBare})`
  }]
}

function keyedChecks (result: RunResult, config: GateConfig): GateCheck[] {
  const keyed = result.keyed
  const rules = config.keyed
  if (keyed === undefined || rules === undefined) return []
  const check = (name: string, actual: number, limit: number, pass: boolean, detail: string): GateCheck => ({ name: `keyed: ${name}`, pass, actual, limit, detail })
  const above = keyed.keyed.loop.p99Ms - keyed.idle.p99Ms
  const journalAbove = keyed.journal.loop.p99Ms - keyed.journal.idle.p99Ms
  return [
    check('p99 - idle p99', above, rules.maxP99AboveIdleMs, above <= rules.maxP99AboveIdleMs, `keyed p99 ${fmt(keyed.keyed.loop.p99Ms)} ms is ${fmt(above)} ms above idle ${fmt(keyed.idle.p99Ms)} ms (limit ${rules.maxP99AboveIdleMs} ms)`),
    check('max loop delay', keyed.keyed.loop.maxMs, rules.maxLoopMaxMs, keyed.keyed.loop.maxMs < rules.maxLoopMaxMs, `longest delay ${fmt(keyed.keyed.loop.maxMs)} ms while saving (idle ${fmt(keyed.idle.maxMs)} ms; limit ${rules.maxLoopMaxMs} ms)`),
    check('main ms per save / whole hand-off', keyed.keyedToWholeRatio, rules.maxMainRatioToWhole, keyed.keyedToWholeRatio < rules.maxMainRatioToWhole, `${fmt(keyed.keyed.mainMs.p50Ms)} ms per save against ${fmt(keyed.wholeHandoffMs)} ms to hand the whole state over (must be below ${rules.maxMainRatioToWhole})`),
    check('one-entry change, 10x entries', keyed.scaling.ratio, rules.maxOneEntryScaling, keyed.scaling.ratio <= rules.maxOneEntryScaling, `${fmt(keyed.scaling.largeMs)} ms at ${keyed.scaling.largeEntries} entries, ${fmt(keyed.scaling.smallMs)} ms at ${keyed.scaling.smallEntries} (at most ${rules.maxOneEntryScaling}x)`),
    check('journal saves/s', keyed.journal.savesPerSec, rules.journalMinSavesPerSec, keyed.journal.savesPerSec >= rules.journalMinSavesPerSec, `${keyed.journal.savesPerSec.toFixed(0)} durable journal saves/s (at least ${rules.journalMinSavesPerSec})`),
    check('journal p99 - idle p99', journalAbove, rules.journalMaxP99AboveIdleMs, journalAbove <= rules.journalMaxP99AboveIdleMs, `journal p99 ${fmt(keyed.journal.loop.p99Ms)} ms is ${fmt(journalAbove)} ms above idle ${fmt(keyed.journal.idle.p99Ms)} ms (limit ${rules.journalMaxP99AboveIdleMs} ms)`)
  ]
}

function baselineChecks (result: RunResult, baseline: RunResult, config: GateConfig, filter: (params: LoopLatencyParams) => boolean): GateCheck[] {
  if (baseline.schemaVersion !== result.schemaVersion) {
    return [{ name: 'baseline: schema', pass: false, actual: baseline.schemaVersion, limit: result.schemaVersion, detail: `the baseline has schema ${String(baseline.schemaVersion)}, this run ${result.schemaVersion}` }]
  }
  const { maxRegressionPercent, slackMs } = config.baseline
  const growth = 1 + maxRegressionPercent / 100
  const checks: GateCheck[] = []
  for (const { params, modes } of result.loopLatency.filter((s) => filter(s.params))) {
    const before = baseline.loopLatency.find((s) => s.params.name === params.name)
    if (before === undefined) continue
    // The excess over idle, not the raw p99: the idle floor moves with the machine's load.
    const now = modes.offloaded.loop.p99Ms - modes.idle.loop.p99Ms
    const then = before.modes.offloaded.loop.p99Ms - before.modes.idle.loop.p99Ms
    const limit = Math.max(0, then) * growth + slackMs
    checks.push({
      name: `baseline ${params.name}: offloaded p99 above idle`,
      pass: now <= limit,
      actual: now,
      limit,
      detail: `${fmt(now)} ms now, ${fmt(then)} ms in the baseline (limit +${maxRegressionPercent}% + ${slackMs} ms = ${fmt(limit)} ms)`
    })
  }
  if (result.throughput !== undefined && baseline.throughput !== undefined) {
    const limit = baseline.throughput.ratio / growth
    checks.push({
      name: 'baseline throughput: save()/bare',
      pass: result.throughput.ratio >= limit,
      actual: result.throughput.ratio,
      limit,
      detail: `${fmt(result.throughput.ratio)} now, ${fmt(baseline.throughput.ratio)} in the baseline (limit -${maxRegressionPercent}% = ${fmt(limit)})`
    })
  }
  if (checks.length === 0) {
    checks.push({ name: 'baseline: comparable figures', pass: false, actual: 0, limit: 1, detail: 'the baseline shares no gated scenario or throughput figure with this run' })
  }
  return checks
}

/** Judges a run against the config's thresholds, and against a baseline run when one is given. */
export function evaluateGate (result: RunResult, config: GateConfig, options: GateOptions = {}): GateVerdict {
  const { encoders, maxStateBytes } = config.loopLatency.appliesTo
  const filter = options.scenarioFilter ?? ((params: LoopLatencyParams) => encoders.includes(params.encoder) && params.actualBytes <= maxStateBytes)
  const advisory = (checks: GateCheck[], flag: boolean | undefined): GateCheck[] => flag === true ? checks.map((check) => ({ ...check, advisory: true })) : checks
  const cpu = [
    ...(result.cpu === undefined ? [] : cpuChecks(result.cpu, options.cpuDecides ?? true)),
    ...(result.cpu !== undefined && options.baseline?.cpu !== undefined && config.cpu !== undefined ? cpuBaselineChecks(result, options.baseline, config.cpu.maxRegressionPercent, options.baselineOnly === true) : [])
  ]
  if (options.cpuOnly === true) return verdictOf(cpu)
  const checks = [
    ...cpu,
    ...advisory(loopChecks(result, config, filter), config.loopLatency.advisory === true || options.baselineOnly === true),
    ...advisory(throughputChecks(result, config, options.requireThroughput ?? true), config.throughput.advisory === true || options.baselineOnly === true),
    ...keyedChecks(result, config),
    ...targetChecks(result, config),
    ...advisory(options.baseline === undefined ? [] : baselineChecks(result, options.baseline, config, filter), config.loopLatency.advisory)
  ]
  return verdictOf(checks.map((check) => check.pass || check.advice !== undefined ? check : { ...check, advice: adviceFor(check) }))
}

/** The measured targets as advisory checks: reported beside the deciding rules until shown stable. */
function targetChecks (result: RunResult, config: GateConfig): GateCheck[] {
  if (config.targets === undefined) return []
  return targetRows(result, config.targets).flatMap((row) => row.actual === undefined
    ? []
    : [{
        name: `target ${row.section}: ${row.figure}`,
        pass: row.status === 'pass',
        advisory: true,
        actual: row.actual,
        limit: row.target,
        detail: `${fmt(row.actual)} against the target ${row.kind === 'max' ? 'at most' : 'at least'} ${row.target}`,
        advice: 'a project target, not a regression: see docs/benchmarks.md for what the figure measures'
      }])
}

const CPU_ADVICE = {
  'base-build': 'the change makes each save cost the main thread more CPU than the base build: profile save() on the main thread (node --cpu-prof) and look for work added before the hand-off to the worker',
  budget: 'each save costs the main thread more than handing the value to a thread should (about one structured clone of it): look for encoding, copying or waiting done on the main thread; with a large state, send only what changed (KeyedStore)'
} as const

/** The deciding checks of the CPU verdict, one per subject. */
function cpuChecks (cpu: CpuVerdictResult, deciding = true): GateCheck[] {
  return cpu.subjects.map((subject) => {
    const ratio = subject.deciding
    const status: GateStatus = subject.verdict
    const versus = ratio.reference === 'base-build' ? `the base build's ${fmt(subject.baseCpuPerSaveMs ?? Number.NaN)} ms` : `the budget ${fmt(cpu.reference.budgetMs)} ms (structured clone ${fmt(cpu.reference.cloneMs)} ms, thread hop ${fmt(cpu.reference.hopMs * 1000)} µs)`
    const interval = `median ratio ${fmt(ratio.median)}, ${(ratio.interval.confidence * 100).toFixed(1)}% interval ${fmt(ratio.interval.low)}–${fmt(ratio.interval.high)} over ${ratio.perRound.length} rounds`
    const outcome = (status === 'pass' ? `below ${ratio.limit}` : status === 'fail' ? `above ${ratio.limit}` : `straddles ${ratio.limit}${subject.advisory ? '' : ': more rounds were needed than the time budget allowed'}`) +
      (ratio.reference === 'budget' && !cpu.reference.budgetApplies ? ' (reported only: the state is too small for a budget, its clone costs less than the thread hops; compare with --baseline)' : '')
    return {
      name: `cpu ${subject.name}: main-thread CPU per save / ${ratio.reference === 'base-build' ? 'base build' : 'budget'}`,
      pass: status === 'pass',
      status,
      ...(deciding && !subject.advisory ? {} : { advisory: true }),
      actual: ratio.median,
      limit: ratio.limit,
      detail: `${fmt(subject.cpuPerSaveMs)} ms of main-thread CPU per durable save against ${versus}: ${interval}, ${outcome}`,
      ...(status === 'fail' ? { advice: CPU_ADVICE[ratio.reference] } : status === 'inconclusive' && !subject.advisory ? { advice: 'the machine was too noisy to decide in the time budget: rerun, or raise cpu.timeBudgetMs in the config' } : {})
    }
  })
}

function sameMachine (a: RunResult, b: RunResult): boolean {
  return a.machine.cpuModel === b.machine.cpuModel && a.machine.cores === b.machine.cores && a.machine.node === b.machine.node && !flagsDiffer(a.machine, b.machine)
}

/**
 * The CPU budget ratio of this run against a stored run of the same machine: may grow by
 * `maxRegressionPercent` at most. A comparison decides; a baseline that cannot be compared (another
 * machine, no common subject) is reported, and makes the verdict inconclusive only when the
 * baseline is all that is judged (`baselineOnly`).
 */
function cpuBaselineChecks (result: RunResult, baseline: RunResult, maxRegressionPercent: number, baselineOnly: boolean): GateCheck[] {
  const cpu = result.cpu
  const before = baseline.cpu
  if (cpu === undefined || before === undefined) return []
  const advisory = baselineOnly ? {} : { advisory: true }
  if (!sameMachine(result, baseline)) {
    return [{ name: 'cpu baseline: same machine', pass: false, status: 'inconclusive', ...advisory, actual: 0, limit: 1, detail: `the baseline was taken on ${machineLabel(baseline.machine)}; this run on ${machineLabel(result.machine)}: CPU figures of two machines (or of two sets of runtime flags) are not compared`, advice: 'store the baseline from a run on the same runner type, Node version and flags (see docs/ci-gate.md), or judge this run by its own rules' }]
  }
  const checks: GateCheck[] = []
  for (const subject of cpu.subjects) {
    const then = before.subjects.find((s) => s.name === subject.name)
    if (then === undefined) continue
    // The budget ratio, not ms: it is normalised by the machine's speed measured in the same run.
    const now = subject.budget ?? subject.deciding
    const thenRatio = then.budget ?? then.deciding
    const growth = 1 + maxRegressionPercent / 100
    const limit = thenRatio.median * growth
    // The stored figure is an estimate too: a failure must clear the top of its interval, so a
    // baseline whose median came out low on a noisy day does not fail an unchanged build.
    const failLimit = Math.max(limit, thenRatio.interval.high * growth)
    const status: GateStatus = now.interval.high < limit ? 'pass' : now.interval.low > failLimit ? 'fail' : 'inconclusive'
    checks.push({
      name: `cpu baseline ${subject.name}: budget ratio against the stored run`,
      pass: status === 'pass',
      status,
      actual: now.median,
      limit,
      detail: `budget ratio ${fmt(now.median)} (interval ${fmt(now.interval.low)}–${fmt(now.interval.high)}) against ${fmt(thenRatio.median)} (interval ${fmt(thenRatio.interval.low)}–${fmt(thenRatio.interval.high)}) in the baseline of ${baseline.startedAt} (limit +${maxRegressionPercent}%: passes below ${fmt(limit)}, fails above ${fmt(failLimit)})`,
      ...(status === 'fail' ? { advice: 'main-thread CPU per save grew since the baseline: compare the two runs\' codec and sample, and profile save() (node --cpu-prof)' } : {})
    })
  }
  if (checks.length === 0) checks.push({ name: 'cpu baseline: comparable subjects', pass: false, status: 'inconclusive', ...advisory, actual: 0, limit: 1, detail: 'the baseline has no CPU subject of the same name as this run', advice: 'keep the same --sample and codec between the baseline and this run' })
  return checks
}

function adviceFor (check: GateCheck): string {
  if (check.name.includes('offloaded p99 / inline p99')) return 'offloading barely beats encoding inline here: with a light codec there is little to beat (the hand-off is a structured clone, about what JSON.stringify costs), so judge it by the CPU rules, or send only what changed (KeyedStore)'
  if (check.name.includes('offloaded p99 - idle p99')) return 'the loop is delayed while saving: compare the run-queue wait of the idle window (scheduler noise) with the CPU verdict; if the CPU verdict passes, the delay comes from the machine, not the main thread\'s work'
  if (check.name.startsWith('throughput')) return 'each durable save waits for a round trip to the worker; many stores overlap it (see many-stores)'
  return 'see docs/ci-gate.md for what this check measures'
}
