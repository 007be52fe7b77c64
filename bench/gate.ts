import { readFileSync } from 'node:fs'
import type { RunResult } from './run-result.js'
import type { LoopLatencyParams } from './scenarios/loop-latency.js'

/** The thresholds in `bench/gate.config.json`. Every rule compares figures taken in the same run. */
export interface GateConfig {
  readonly loopLatency: {
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
    /** Durable `save()` throughput must stay above this fraction of the bare fsync loop. */
    readonly minRatioToBare: number
  }
  /** Issue 5's targets for a large keyed state (judged only when the run has the keyed scenario). */
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
  readonly baseline: {
    /** With `--baseline`, a figure may worsen by at most this percentage. */
    readonly maxRegressionPercent: number
    /** Millisecond figures may also worsen by this much, so a 0.2 → 0.4 ms change is not a failure. */
    readonly slackMs: number
  }
}

/** One rule applied to one figure. */
export interface GateCheck {
  readonly name: string
  readonly pass: boolean
  readonly actual: number
  readonly limit: number
  /** The rule in words, with the figures. */
  readonly detail: string
}

/** The gate's verdict. */
export interface GateVerdict {
  readonly pass: boolean
  readonly checks: readonly GateCheck[]
}

/** Options of {@link evaluateGate}. */
export interface GateOptions {
  /** A previous run to compare with. */
  readonly baseline?: RunResult
  /** Judges these scenarios instead of `config.loopLatency.appliesTo` (the user bin judges its own). */
  readonly scenarioFilter?: (params: LoopLatencyParams) => boolean
  /** Fail when the result has no throughput figures. @defaultValue true */
  readonly requireThroughput?: boolean
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
  for (const [name, value] of numbers) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`gate config ${name} must be a number >= 0, got ${String(value)}`)
  }
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
  const checks = [
    ...loopChecks(result, config, filter),
    ...throughputChecks(result, config, options.requireThroughput ?? true),
    ...keyedChecks(result, config),
    ...(options.baseline === undefined ? [] : baselineChecks(result, options.baseline, config, filter))
  ]
  return { pass: checks.every((check) => check.pass), checks }
}
