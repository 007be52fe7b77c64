import { requireNumbers } from './config-check.js'
import type { RunResult } from './run-result.js'
import type { HandoffFloors } from './scenarios/handoff-cost.js'
import { sizeLabel } from './report-table.js'

// The performance targets of the project, each figure of a run set beside its target. The targets
// live in gate.config.json (`targets`); the report prints them all, the gate lists them as advisory
// checks: until a target has been shown to hold run after run on the CI machine, it informs and
// does not decide.

/** The `targets` section of gate.config.json: every limit is a ratio or a difference taken in one run. */
export interface TargetsConfig {
  /** Section 1: main-thread ms per save / JSON.stringify of the same value, at most, at these sizes. */
  readonly mainPerSave: { readonly sizes: readonly number[], readonly maxRatioToStringify: number }
  /** Section 2: durable save() throughput / the bare write loop in the same run, at least. */
  readonly durable: { readonly minRatio1KB: number, readonly minRatio1MB: number, readonly minRatioNoSync: number }
  /** Section 3: the keyed state saved every 100 ms, against idle windows of the same run. */
  readonly keyed: { readonly maxP99AboveIdleMs: number, readonly maxMaxAboveIdleMs: number }
  /** Section 4: a million entries. */
  readonly million: { readonly maxLoadRatioToStore: number, readonly maxFirstSaveRatioToInline: number, readonly maxLoopMaxAboveIdleMs: number }
}

/** One figure of a run beside its target: `status` is `not measured` when the run lacks the scenario. */
export interface TargetRow {
  readonly section: string
  readonly figure: string
  /** The measured value; undefined when this run did not measure it. */
  readonly actual: number | undefined
  readonly target: number
  /** `max`: the figure must be at most the target (lower is better); `min`: at least (higher is better). */
  readonly kind: 'max' | 'min'
  readonly status: 'pass' | 'fail' | 'not measured'
  /**
   * The same figure for designs without the library's extra steps, measured in the same run: the
   * most any design of that kind reaches here. Printed beside the figure; never part of `status`.
   */
  readonly floors: readonly TargetFloor[]
}

/** One floor beside a target's figure: what it measures, and its value in the same units as the figure. */
interface TargetFloor {
  readonly label: string
  readonly value: number
}

function row (section: string, figure: string, actual: number | undefined, target: number, kind: 'max' | 'min', floors: ReadonlyArray<readonly [label: string, value: number | undefined]> = []): TargetRow {
  const status = actual === undefined || !Number.isFinite(actual)
    ? 'not measured'
    : (kind === 'max' ? actual <= target : actual >= target) ? 'pass' : 'fail'
  const measured = floors.flatMap(([label, value]) => value === undefined || !Number.isFinite(value) ? [] : [{ label, value }])
  return { section, figure, actual: status === 'not measured' ? undefined : actual, target, kind, status, floors: measured }
}

/**
 * The floors that bound each codec's main-thread figure. codecs.json() (and gzip of it) must
 * stringify on the main thread, so its floor is a stringify and a post of the text; the lossy save
 * is the same library without the fidelity check. The other codecs copy the value to the worker:
 * the least such a copy costs is v8.serialize with its bytes transferred (as the store does), and a
 * post of the value as is, postMessage's own clone, is shown beside it.
 */
function mainFloors (codec: string, floors: HandoffFloors | undefined): Array<[string, number | undefined]> {
  if (codec === 'json') return [['stringify + post alone', floors?.stringifyPost.ratioToStringify], ['lossy', floors?.lossy.ratioToStringify]]
  if (codec === 'gzip(json)') return [['stringify + post alone', floors?.stringifyPost.ratioToStringify]]
  return [['v8.serialize + transfer alone', floors?.serializeTransfer.ratioToStringify], ['clone + post alone', floors?.clonePost.ratioToStringify]]
}

const HOP = 'a bare worker hop in this run'

/** Checks a `targets` section: every limit a finite number >= 0, the sizes a non-empty list. */
export function checkTargetsConfig (targets: TargetsConfig): void {
  const numbers: Array<[string, unknown]> = [
    ['mainPerSave.maxRatioToStringify', targets.mainPerSave?.maxRatioToStringify],
    ['durable.minRatio1KB', targets.durable?.minRatio1KB],
    ['durable.minRatio1MB', targets.durable?.minRatio1MB],
    ['durable.minRatioNoSync', targets.durable?.minRatioNoSync],
    ['keyed.maxP99AboveIdleMs', targets.keyed?.maxP99AboveIdleMs],
    ['keyed.maxMaxAboveIdleMs', targets.keyed?.maxMaxAboveIdleMs],
    ['million.maxLoadRatioToStore', targets.million?.maxLoadRatioToStore],
    ['million.maxFirstSaveRatioToInline', targets.million?.maxFirstSaveRatioToInline],
    ['million.maxLoopMaxAboveIdleMs', targets.million?.maxLoopMaxAboveIdleMs]
  ]
  requireNumbers('targets.', numbers)
  if (!Array.isArray(targets.mainPerSave.sizes) || targets.mainPerSave.sizes.length === 0) throw new TypeError('gate config targets.mainPerSave.sizes must be a non-empty array of state sizes')
}

/** Every target of the config with this run's figure beside it, in section order. */
export function targetRows (result: RunResult, targets: TargetsConfig): TargetRow[] {
  const rows: TargetRow[] = []
  const main = targets.mainPerSave
  const perCodec = result.handoff?.codecRows ?? []
  const codecs = [...new Set(['json', ...perCodec.map((r) => r.codec)])]
  for (const codec of codecs) {
    for (const size of main.sizes) {
      const found = codec === 'json'
        ? result.handoff?.rows.find((r) => r.sizeBytes === size)?.ratioToStringify
        : perCodec.find((r) => r.codec === codec && r.sizeBytes === size)?.ratioToStringify
      const floors = result.handoff?.rows.find((r) => r.sizeBytes === size)?.floors
      rows.push(row('1 main thread', `${codec} ${sizeLabel(size)}: main ms per save / JSON.stringify`, found, main.maxRatioToStringify, 'max', mainFloors(codec, floors)))
    }
  }
  const t = result.throughput
  rows.push(row('2 durable writes', '1 KB save() / bare loop', t?.ratio, targets.durable.minRatio1KB, 'min', [[HOP, t?.hop?.ratio]]))
  rows.push(row('2 durable writes', '1 MB save() / bare loop', t?.large?.ratio, targets.durable.minRatio1MB, 'min', [[HOP, t?.large?.hop?.ratio]]))
  rows.push(row('2 durable writes', "1 KB durability 'none' / bare loop without fsync", t?.noSync?.ratio, targets.durable.minRatioNoSync, 'min', [[HOP, t?.noSync?.hop?.ratio]]))
  const k = result.keyed
  rows.push(row('3 keyed tails', 'keyed p99 - idle p99 (ms)', k === undefined ? undefined : k.keyed.loop.p99Ms - k.idle.p99Ms, targets.keyed.maxP99AboveIdleMs, 'max'))
  rows.push(row('3 keyed tails', 'keyed max - idle max (ms)', k === undefined ? undefined : k.keyed.loop.maxMs - k.idle.maxMs, targets.keyed.maxMaxAboveIdleMs, 'max'))
  const m = result.million
  rows.push(row('4 a million entries', 'KeyedStore.load() / Store.load()', m?.loadRatio, targets.million.maxLoadRatioToStore, 'max'))
  rows.push(row('4 a million entries', 'first full save / (JSON.stringify + durable write)', m?.firstSaveRatio, targets.million.maxFirstSaveRatioToInline, 'max'))
  rows.push(row('4 a million entries', 'loop max during load - idle max (ms)', m === undefined ? undefined : m.loadLoop.maxMs - m.idle.maxMs, targets.million.maxLoopMaxAboveIdleMs, 'max'))
  rows.push(row('4 a million entries', 'loop max during first save - idle max (ms)', m === undefined ? undefined : m.saveLoop.maxMs - m.idle.maxMs, targets.million.maxLoopMaxAboveIdleMs, 'max'))
  return rows
}

/** The rows as plain text lines: figure, value, target (and the floors measured beside it), pass/fail. */
export function formatTargets (rows: readonly TargetRow[]): string[] {
  const out = ['Targets (each figure against its target from gate.config.json; "<=" lower is better, ">=" higher is better):']
  let section = ''
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section
      out.push(`  ${section}`)
    }
    const value = r.actual === undefined ? '—' : r.actual.toFixed(2)
    const word = r.status === 'pass' ? 'pass' : r.status === 'fail' ? 'FAIL' : 'not measured'
    const floors = r.floors.map((f) => `; ${f.label}: ${f.value.toFixed(2)}`).join('')
    out.push(`    ${word.padEnd(12)} ${r.figure}: ${value} (target ${r.kind === 'max' ? '<=' : '>='} ${r.target}${floors})`)
  }
  return out
}
