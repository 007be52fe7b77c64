import assert from 'node:assert/strict'
import { test } from 'node:test'
import { evaluateGate, readGateConfig } from '../bench/gate.js'
import { formatReport } from '../bench/report-table.js'
import type { RunResult } from '../bench/run-result.js'
import { targetRows } from '../bench/targets.js'
import { runResultWith } from './helpers.js'

const shipped = readGateConfig(new URL('../../bench/gate.config.json', import.meta.url))
const targets = shipped.targets ?? assert.fail('bench/gate.config.json has no targets section')

const handoff: RunResult['handoff'] = {
  kind: 'handoff-cost',
  rows: [
    { sizeBytes: 1_000, actualBytes: 1_000, stringifyMs: 0.003, v8SerializeMs: 0.004, handoffMs: 0.09, saveCallMs: 0.121, ratioToStringify: 40.33 },
    { sizeBytes: 150_000, actualBytes: 150_000, stringifyMs: 0.8, v8SerializeMs: 0.9, handoffMs: 0.82, saveCallMs: 0.84, ratioToStringify: 1.05 }
  ]
}

test('the shipped gate config holds the performance targets of every section', () => {
  assert.deepEqual(targets.mainPerSave.sizes, [150_000, 1_500_000, 15_000_000])
  assert.equal(targets.mainPerSave.maxRatioToStringify, 1.1)
  assert.deepEqual(targets.durable, { minRatio1KB: 0.9, minRatio1MB: 0.95, minRatioNoSync: 0.8 })
  assert.deepEqual(targets.keyed, { maxP99AboveIdleMs: 1.5, maxMaxAboveIdleMs: 5 })
  assert.deepEqual(targets.million, { maxLoadRatioToStore: 1.2, maxFirstSaveRatioToInline: 1.5, maxLoopMaxAboveIdleMs: 5 })
})

test('every target is reported beside its figure with pass or fail, and as not measured when the run lacks it', () => {
  const rows = targetRows(runResultWith({ handoff }), targets)
  const at150 = rows.find((r) => r.figure === 'json 150KB: main ms per save / JSON.stringify')
  assert.deepEqual({ actual: at150?.actual, status: at150?.status }, { actual: 1.05, status: 'pass' })
  assert.equal(rows.find((r) => r.figure === 'json 1.5MB: main ms per save / JSON.stringify')?.status, 'not measured')
  assert.equal(rows.find((r) => r.figure === '1 KB save() / bare loop')?.status, 'not measured')
  const report = formatReport(runResultWith({ handoff }), undefined, targets)
  assert.match(report, /pass {9}json 150KB: main ms per save \/ JSON\.stringify: 1\.05 \(target <= 1\.1\)/)
  assert.match(report, /not measured {1}keyed p99 - idle p99 \(ms\): — \(target <= 1\.5\)/)
})

test('a keyed tail above its target fails in the report and is an advisory check in the gate', () => {
  const loop = (p99Ms: number, maxMs: number): NonNullable<RunResult['keyed']>['idle'] => ({ p50Ms: 1, p99Ms, maxMs, meanMs: 1, elu: 0.05, samples: 1000, runQueueWaitShare: 0 })
  const keyed: NonNullable<RunResult['keyed']> = {
    stateBytes: 15_000_000,
    entries: 66_000,
    idle: loop(1.3, 18.7),
    keyed: { intervalMs: 100, changedPercent: 1, loop: loop(4.0, 29.6), saves: 50, mainMs: { count: 50, p50Ms: 0.5, p99Ms: 1, maxMs: 1 } },
    wholeHandoffMs: 100,
    keyedToWholeRatio: 0.005,
    scaling: { smallEntries: 6600, largeEntries: 66_000, smallMs: 0.1, largeMs: 0.1, ratio: 1 },
    journal: { savesPerSec: 300, saves: 900, changedPerSave: 10, loop: loop(1.5, 10), idle: loop(1.3, 10) }
  }
  const rows = targetRows(runResultWith({ keyed }), targets)
  const p99 = rows.find((r) => r.figure === 'keyed p99 - idle p99 (ms)')
  assert.equal(p99?.status, 'fail')
  assert.ok(Math.abs((p99?.actual ?? 0) - 2.7) < 1e-9)
  const { keyed: _deciding, ...withoutKeyedRules } = shipped
  const verdict = evaluateGate(runResultWith({ keyed }), withoutKeyedRules, { requireThroughput: false, scenarioFilter: () => true })
  const check = verdict.checks.find((c) => c.name === 'target 3 keyed tails: keyed p99 - idle p99 (ms)')
  assert.equal(check?.pass, false)
  assert.equal(check?.advisory, true)
})

test('the hand-off table leaves out the ratio at a size where it compares fixed costs', () => {
  const report = formatReport(runResultWith({ handoff }), undefined, targets)
  assert.doesNotMatch(report, /40\.33/)
  assert.match(report, /1\.05/)
})
