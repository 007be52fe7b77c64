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

const floored: RunResult['handoff'] = {
  kind: 'handoff-cost',
  rows: [
    {
      sizeBytes: 150_000,
      actualBytes: 150_000,
      stringifyMs: 0.4,
      v8SerializeMs: 0.32,
      handoffMs: 0.59,
      saveCallMs: 0.62,
      ratioToStringify: 1.55,
      floors: { stringifyPost: { ms: 0.48, ratioToStringify: 1.21 }, clonePost: { ms: 0.8, ratioToStringify: 2.01 }, serializeTransfer: { ms: 0.38, ratioToStringify: 0.95 }, lossy: { ms: 0.56, ratioToStringify: 1.4 } }
    }
  ],
  codecRows: [
    { codec: 'schema', sizeBytes: 150_000, actualBytes: 150_000, saveCallMs: 0.48, stringifyMs: 0.4, ratioToStringify: 1.2 },
    { codec: 'gzip(json)', sizeBytes: 150_000, actualBytes: 150_000, saveCallMs: 0.61, stringifyMs: 0.4, ratioToStringify: 1.52 }
  ]
}

const hop = (ratio: number): NonNullable<NonNullable<RunResult['throughput']>['hop']> => ({ opsPerSec: 2000 * ratio, ratio, roundRatios: [ratio - 0.02, ratio, ratio + 0.02] })
const throughputWithHop: NonNullable<RunResult['throughput']> = {
  kind: 'throughput',
  payloadBytes: 1024,
  rounds: 3,
  saveOpsPerSec: 1908,
  bareOpsPerSec: 2601,
  ratio: 0.73,
  roundRatios: [0.71, 0.73, 0.75],
  atomicWriteOpsPerSec: 2589,
  hop: hop(0.8),
  large: { payloadBytes: 1_000_000, saveOpsPerSec: 158, bareOpsPerSec: 184, ratio: 0.85, roundRatios: [0.85], hop: hop(0.91) },
  noSync: { payloadBytes: 1024, saveOpsPerSec: 4560, bareOpsPerSec: 7715, ratio: 0.6, roundRatios: [0.6], hop: hop(0.66) }
}

test('a main-thread target prints the floors measured beside it, and is still judged on the store\'s own figure', () => {
  const result = runResultWith({ handoff: floored })
  const report = formatReport(result, undefined, targets)
  assert.match(report, /FAIL {9}json 150KB: main ms per save \/ JSON\.stringify: 1\.55 \(target <= 1\.1; stringify \+ post alone: 1\.21; lossy: 1\.40\)/)
  assert.match(report, /FAIL {9}schema 150KB: main ms per save \/ JSON\.stringify: 1\.20 \(target <= 1\.1; v8\.serialize \+ transfer alone: 0\.95; clone \+ post alone: 2\.01\)/)
  assert.match(report, /FAIL {9}gzip\(json\) 150KB: main ms per save \/ JSON\.stringify: 1\.52 \(target <= 1\.1; stringify \+ post alone: 1\.21\)/)
  // The serialize floor is under the target, the figure is not: the verdict stays the figure's.
  assert.equal(targetRows(result, targets).find((r) => r.figure === 'schema 150KB: main ms per save / JSON.stringify')?.status, 'fail')
})

test('a durable-write target prints the bare worker hop of the same run beside the store\'s figure', () => {
  const result = runResultWith({ throughput: throughputWithHop })
  const report = formatReport(result, undefined, targets)
  assert.match(report, /FAIL {9}1 KB save\(\) \/ bare loop: 0\.73 \(target >= 0\.9; a bare worker hop in this run: 0\.80\)/)
  assert.match(report, /FAIL {9}1 MB save\(\) \/ bare loop: 0\.85 \(target >= 0\.95; a bare worker hop in this run: 0\.91\)/)
  assert.match(report, /FAIL {9}1 KB durability 'none' \/ bare loop without fsync: 0\.60 \(target >= 0\.8; a bare worker hop in this run: 0\.66\)/)
  const statuses = targetRows(result, targets).filter((r) => r.section === '2 durable writes').map((r) => r.status)
  assert.deepEqual(statuses, ['fail', 'fail', 'fail'])
})

test('a run measured without floors prints its targets without them', () => {
  const { hop: _hop, large: _large, noSync: _noSync, ...bare } = throughputWithHop
  const report = formatReport(runResultWith({ handoff, throughput: bare }), undefined, targets)
  assert.match(report, /FAIL {9}1 KB save\(\) \/ bare loop: 0\.73 \(target >= 0\.9\)\n/)
  assert.match(report, /json 150KB: main ms per save \/ JSON\.stringify: 1\.05 \(target <= 1\.1\)\n/)
})

test('the main-thread table has a column per floor, beside the save() call', () => {
  const report = formatReport(runResultWith({ handoff: floored }), undefined, targets)
  const header = report.split('\n').find((line) => line.startsWith('state ') && line.includes('hand-off (mainMs)')) ?? assert.fail('no main-thread table')
  assert.match(header, /call \/ stringify {2}stringify \+ post \/ stringify {2}clone \+ post \/ stringify {2}serialize \+ transfer \/ stringify {2}lossy call \/ stringify$/)
  const row = report.split('\n').find((line) => line.startsWith('150KB ')) ?? assert.fail('no 150KB row')
  assert.match(row, /1\.55 +1\.21 +2\.01 +0\.95 +1\.40$/)
})

test('the throughput lines print the bare worker hop beside each pair', () => {
  const report = formatReport(runResultWith({ throughput: throughputWithHop }), undefined, targets)
  assert.match(report, /Durable writes of 1024 B.*ratio 0\.73 \(rounds: 0\.71, 0\.73, 0\.75\); a bare worker hop 1600\/s, ratio 0\.80 \(rounds: 0\.78, 0\.80, 0\.82\)/)
  assert.match(report, / {2}1 MB: save\(\) 158\/s, bare 184\/s, ratio 0\.85 \(rounds: 0\.85\); a bare worker hop 1820\/s, ratio 0\.91 \(rounds: 0\.89, 0\.91, 0\.93\)/)
  assert.match(report, / {2}1 KB, durability 'none' against the loop without fsync: .*ratio 0\.60 \(rounds: 0\.60\); a bare worker hop 1320\/s, ratio 0\.66/)
})
