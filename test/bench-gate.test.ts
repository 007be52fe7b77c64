import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { CpuSubjectResult, CpuVerdictResult } from '../bench/cpu-verdict.js'
import { checkStatus, EXIT, evaluateGate, type GateConfig, readGateConfig } from '../bench/gate.js'
import { formatMarkdown } from '../bench/markdown.js'
import { formatReport } from '../bench/report-table.js'
import type { LoopStats } from '../bench/loop-monitor.js'
import type { RunResult, ThroughputResult } from '../bench/run-result.js'
import type { LoopLatencyResult, ModeFigures } from '../bench/scenarios/loop-latency.js'
import { runResultWith, tempDir } from './helpers.js'

const config: GateConfig = {
  loopLatency: { appliesTo: { encoders: ['heavy'], maxStateBytes: 200_000 }, maxP99AboveIdleMs: 3, maxP99RatioToInline: 0.2, ratioOnlyWhenInlineAboveIdleMs: 3 },
  throughput: { minRatioToBare: 0.5 },
  baseline: { maxRegressionPercent: 50, slackMs: 1 }
}

function mode (p99Ms: number): ModeFigures {
  const loop: LoopStats = { p50Ms: 1, p99Ms, maxMs: p99Ms, meanMs: 1, elu: 0.1, samples: 1000, runQueueWaitShare: 0 }
  const spread = { count: 1, p50Ms: 1, p99Ms: 1, maxMs: 1 }
  return { loop, requests: 1000, writes: 10, saveLatency: spread, mainPerWrite: spread, memory: { rssMB: 1, heapUsedMB: 1, peakRssMB: 1 } }
}

function scenario (name: string, p99: { idle: number, inline: number, offloaded: number }, encoder = 'heavy', actualBytes = 150_000): LoopLatencyResult {
  return {
    kind: 'loop-latency',
    params: { name, sizeBytes: actualBytes, actualBytes, encoder, pattern: 'save-10ms', durationMs: 1000, rounds: 2 },
    modes: { idle: mode(p99.idle), inline: mode(p99.inline), offloaded: mode(p99.offloaded) }
  }
}

function throughput (ratio: number): ThroughputResult {
  return { kind: 'throughput', payloadBytes: 1024, rounds: 1, saveOpsPerSec: 1000 * ratio, bareOpsPerSec: 1000, ratio, roundRatios: [ratio], atomicWriteOpsPerSec: 1000 }
}

function run (loopLatency: LoopLatencyResult[], ratio?: number): RunResult {
  return runResultWith({ scope: 'quick', loopLatency, ...(ratio === undefined ? {} : { throughput: throughput(ratio) }) })
}

const good = scenario('heavy/150KB/save-10ms', { idle: 1.2, inline: 25, offloaded: 2 })

test('the gate passes when offloaded stays near idle, far below inline, and throughput is above half the limit', () => {
  const verdict = evaluateGate(run([good], 0.8), config)
  assert.equal(verdict.pass, true)
  assert.deepEqual(verdict.checks.map((c) => c.pass), [true, true, true])
})

test('the gate fails when offloaded p99 is more than maxP99AboveIdleMs above idle', () => {
  const verdict = evaluateGate(run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 100, offloaded: 4.5 })], 0.8), config)
  assert.equal(verdict.pass, false)
  assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), ['heavy/150KB/save-10ms: offloaded p99 - idle p99'])
})

test('the gate fails when offloaded p99 is not below a fifth of inline', () => {
  const verdict = evaluateGate(run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 10, offloaded: 2.5 })], 0.8), config)
  assert.equal(verdict.pass, false)
  assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), ['heavy/150KB/save-10ms: offloaded p99 / inline p99'])
})

test('the ratio rule is skipped when inline itself stays within ratioOnlyWhenInlineAboveIdleMs of idle', () => {
  const verdict = evaluateGate(run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 2, offloaded: 1.5 })], 0.8), config)
  assert.equal(verdict.pass, true)
  assert.equal(verdict.checks.some((c) => c.name.endsWith('inline p99')), false)
})

test('the gate fails when save() throughput is at or below half of the bare fsync loop', () => {
  const verdict = evaluateGate(run([good], 0.5), config)
  assert.equal(verdict.pass, false)
  assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), ['throughput: save()/bare'])
})

test('the gate fails when throughput is missing, unless told not to require it', () => {
  assert.equal(evaluateGate(run([good]), config).pass, false)
  assert.equal(evaluateGate(run([good]), config, { requireThroughput: false }).pass, true)
})

test('only scenarios the config names are judged; none matching is a failure, not a pass', () => {
  const cheap = scenario('json/15MB/save-10ms', { idle: 1, inline: 100, offloaded: 90 }, 'json', 15_000_000)
  const bigHeavy = scenario('heavy/15MB/save-10ms', { idle: 1, inline: 100, offloaded: 90 }, 'heavy', 15_000_000)
  assert.equal(evaluateGate(run([good, cheap, bigHeavy], 0.8), config).pass, true)
  const verdict = evaluateGate(run([cheap, bigHeavy], 0.8), config)
  assert.equal(verdict.pass, false)
  assert.equal(verdict.checks[0]?.name, 'loop-latency: scenarios judged')
})

test('a baseline comparison passes within the stated regression and fails beyond it', () => {
  const baseline = run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 25, offloaded: 2 })], 0.8)
  // Excess over idle: 1 ms in the baseline; limit 1 × 1.5 + 1 ms slack = 2.5 ms.
  const within = run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 25, offloaded: 3.4 })], 0.7)
  assert.equal(evaluateGate(within, config, { baseline }).pass, true)
  const slower = run([scenario('heavy/150KB/save-10ms', { idle: 1, inline: 25, offloaded: 3.6 })], 0.8)
  const verdict = evaluateGate(slower, config, { baseline })
  assert.equal(verdict.pass, false)
  assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), ['baseline heavy/150KB/save-10ms: offloaded p99 above idle'])
})

test('a baseline throughput ratio that dropped more than the stated percentage fails', () => {
  const baseline = run([good], 0.9)
  const verdict = evaluateGate(run([good], 0.55), config, { baseline })
  assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), ['baseline throughput: save()/bare'])
})

test('a baseline with no figure in common fails rather than passing silently', () => {
  const baseline = run([scenario('heavy/1KB/delay-storm', { idle: 1, inline: 25, offloaded: 2 })])
  const verdict = evaluateGate(run([good], 0.8), config, { baseline })
  assert.equal(verdict.pass, false)
  assert.equal(verdict.checks.at(-1)?.name, 'baseline: comparable figures')
})

test('the committed gate config is valid and holds the documented loop thresholds', () => {
  const committed = readGateConfig(new URL('../../bench/gate.config.json', import.meta.url))
  assert.equal(committed.loopLatency.maxP99AboveIdleMs, 3)
  assert.equal(committed.loopLatency.maxP99RatioToInline, 0.2)
  assert.equal(committed.throughput.minRatioToBare, 0.5)
})

function keyedResult (overrides: { p99?: number, max?: number, ratio?: number, scaling?: number, journalPerSec?: number } = {}): NonNullable<RunResult['keyed']> {
  const loop = (p99Ms: number, maxMs: number): LoopStats => ({ p50Ms: 1, p99Ms, maxMs, meanMs: 1, elu: 0.05, samples: 1000, runQueueWaitShare: 0 })
  const ratio = overrides.ratio ?? 0.02
  const scaling = overrides.scaling ?? 1.1
  return {
    stateBytes: 15_000_000,
    entries: 66_000,
    idle: loop(1.2, 5),
    keyed: { intervalMs: 100, changedPercent: 1, loop: loop(overrides.p99 ?? 2, overrides.max ?? 8), saves: 40, mainMs: { count: 20, p50Ms: 200 * ratio, p99Ms: 10, maxMs: 10 } },
    wholeHandoffMs: 200,
    keyedToWholeRatio: ratio,
    scaling: { smallEntries: 6600, largeEntries: 66_000, smallMs: 0.04, largeMs: 0.04 * scaling, ratio: scaling },
    journal: { savesPerSec: overrides.journalPerSec ?? 900, saves: 2700, changedPerSave: 10, loop: loop(2, 8), idle: loop(1.2, 5) }
  }
}

const keyedConfig: GateConfig = { ...config, keyed: { maxP99AboveIdleMs: 3, maxLoopMaxMs: 10, maxMainRatioToWhole: 0.05, maxOneEntryScaling: 2, journalMinSavesPerSec: 200, journalMaxP99AboveIdleMs: 3 } }

test('the keyed checks pass when the keyed targets are met', () => {
  const verdict = evaluateGate({ ...run([good], 0.8), keyed: keyedResult() }, keyedConfig)
  assert.equal(verdict.pass, true)
  assert.equal(verdict.checks.filter((c) => c.name.startsWith('keyed:')).length, 6)
})

for (const [what, overrides, failing] of [
  ['p99 too far above idle', { p99: 5 }, 'keyed: p99 - idle p99'],
  ['a long stall', { max: 40 }, 'keyed: max loop delay'],
  ['a save costing too much of the whole hand-off', { ratio: 0.2 }, 'keyed: main ms per save / whole hand-off'],
  ['a one-entry change growing with the state', { scaling: 5 }, 'keyed: one-entry change, 10x entries'],
  ['too few journal saves per second', { journalPerSec: 50 }, 'keyed: journal saves/s']
] as const) {
  test(`the keyed checks fail on ${what}`, () => {
    const verdict = evaluateGate({ ...run([good], 0.8), keyed: keyedResult(overrides) }, keyedConfig)
    assert.equal(verdict.pass, false)
    assert.deepEqual(verdict.checks.filter((c) => !c.pass).map((c) => c.name), [failing])
  })
}

test('the shipped gate config has keyed thresholds', () => {
  const shipped = readGateConfig(new URL('../../bench/gate.config.json', import.meta.url))
  assert.equal(shipped.keyed?.maxMainRatioToWhole, 0.05)
})

function cpuResult (verdicts: Array<{ median: number, low: number, high: number }>, reference: 'base-build' | 'budget' = 'budget'): CpuVerdictResult {
  const limit = reference === 'budget' ? 1 : 1.25
  const subjects: CpuSubjectResult[] = verdicts.map(({ median, low, high }, i) => {
    const decision = high < limit ? 'pass' : low > limit ? 'fail' : 'undecided'
    return {
      name: `store/s${i}`,
      cpuPerSaveMs: median,
      deciding: { reference, limit, perRound: [median], median, interval: { low, high, confidence: 0.99 }, decision },
      verdict: decision === 'undecided' ? 'inconclusive' : decision,
      advisory: false
    }
  })
  return {
    kind: 'cpu-per-save',
    stateBytes: 150_000,
    savesPerSlice: 8,
    rounds: 8,
    looks: 16,
    elapsedMs: 1000,
    seed: 1,
    reference: { floorMs: 0.01, cloneMs: 1, hopMs: 0.01, budgetMs: 0.95, budgetApplies: true },
    runQueueWaitShare: 0.1,
    subjects,
    verdict: subjects.some((s) => s.verdict === 'fail') ? 'fail' : subjects.every((s) => s.verdict === 'pass') ? 'pass' : 'inconclusive'
  }
}

const advisoryConfig: GateConfig = { ...config, loopLatency: { ...config.loopLatency, advisory: true }, throughput: { ...config.throughput, advisory: true } }

test('the CPU check decides: a CPU subject above its limit fails the gate even when every advisory rule passes', () => {
  const verdict = evaluateGate({ ...run([good], 0.8), cpu: cpuResult([{ median: 1.6, low: 1.4, high: 1.8 }]) }, advisoryConfig)
  assert.equal(verdict.status, 'fail')
  assert.equal(verdict.pass, false)
  const failing = verdict.checks.filter((c) => checkStatus(c) === 'fail')
  assert.equal(failing.length, 1)
  assert.match(failing[0]?.advice ?? '', /main thread/)
})

test('a CPU interval that straddles its limit makes the gate inconclusive, never a failure', () => {
  const verdict = evaluateGate({ ...run([good], 0.8), cpu: cpuResult([{ median: 0.7, low: 0.6, high: 0.8 }, { median: 1.0, low: 0.9, high: 1.1 }]) }, advisoryConfig)
  assert.equal(verdict.status, 'inconclusive')
  assert.equal(EXIT[verdict.status], 3)
})

test('advisory loop and throughput rules that fail are reported with advice and do not fail the gate', () => {
  const bad = scenario('heavy/150KB/save-10ms', { idle: 1, inline: 10, offloaded: 6 })
  const verdict = evaluateGate({ ...run([bad], 0.3), cpu: cpuResult([{ median: 0.6, low: 0.5, high: 0.7 }]) }, advisoryConfig)
  assert.equal(verdict.status, 'pass')
  const advisory = verdict.checks.filter((c) => c.advisory === true && !c.pass)
  assert.deepEqual(advisory.map((c) => c.name), ['heavy/150KB/save-10ms: offloaded p99 - idle p99', 'heavy/150KB/save-10ms: offloaded p99 / inline p99', 'throughput: save()/bare'])
  for (const check of advisory) assert.ok((check.advice ?? '').length > 0, `${check.name} has advice`)
})

test('with a stored baseline, the CPU budget ratio fails when its interval is above the stored run\'s interval plus the allowed growth', () => {
  const cpuConfig: GateConfig = { ...advisoryConfig, cpu: { ...JSON.parse(JSON.stringify(readGateConfig(new URL('../../bench/gate.config.json', import.meta.url)).cpu)) as NonNullable<GateConfig['cpu']>, maxRegressionPercent: 25 } }
  const baseline: RunResult = { ...run([good]), cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.65 }]) }
  const grown = evaluateGate({ ...run([good]), cpu: cpuResult([{ median: 0.9, low: 0.85, high: 0.95 }]) }, cpuConfig, { baseline, requireThroughput: false })
  assert.equal(grown.status, 'fail')
  assert.deepEqual(grown.checks.filter((c) => checkStatus(c) === 'fail').map((c) => c.name), ['cpu baseline store/s0: budget ratio against the stored run'])
  const same = evaluateGate({ ...run([good]), cpu: cpuResult([{ median: 0.62, low: 0.58, high: 0.66 }]) }, cpuConfig, { baseline, requireThroughput: false })
  assert.equal(same.status, 'pass')
})

test('a CPU budget ratio above the stored median plus the allowed growth, but within the stored run\'s own interval plus it, is inconclusive, not a failure', () => {
  // Both runs are estimates: a noisy baseline median alone would fail a build that did not change.
  const cpuConfig: GateConfig = { ...advisoryConfig, cpu: { ...JSON.parse(JSON.stringify(readGateConfig(new URL('../../bench/gate.config.json', import.meta.url)).cpu)) as NonNullable<GateConfig['cpu']>, maxRegressionPercent: 25 } }
  const baseline: RunResult = { ...run([good]), cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.68 }]) }
  // Limit from the median: 0.75; from the stored interval's top: 0.85.
  const noisy = evaluateGate({ ...run([good]), cpu: cpuResult([{ median: 0.8, low: 0.77, high: 0.84 }]) }, cpuConfig, { baseline, requireThroughput: false })
  assert.equal(noisy.status, 'inconclusive')
  const grown = evaluateGate({ ...run([good]), cpu: cpuResult([{ median: 0.9, low: 0.87, high: 0.95 }]) }, cpuConfig, { baseline, requireThroughput: false })
  assert.equal(grown.status, 'fail')
})

test('a CPU baseline from another machine is not compared: inconclusive in baseline-only mode, reported otherwise', () => {
  const cpuConfig: GateConfig = { ...advisoryConfig, cpu: readGateConfig(new URL('../../bench/gate.config.json', import.meta.url)).cpu as NonNullable<GateConfig['cpu']> }
  const other = run([good])
  const baseline: RunResult = { ...other, machine: { ...other.machine, cpuModel: 'another CPU' }, cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.65 }]) }
  const current: RunResult = { ...run([good]), cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.65 }]) }
  assert.equal(evaluateGate(current, cpuConfig, { baseline, requireThroughput: false }).status, 'pass')
  const only = evaluateGate(current, cpuConfig, { baseline, requireThroughput: false, baselineOnly: true, cpuDecides: false })
  assert.equal(only.status, 'inconclusive')
  assert.match(only.checks.find((c) => c.name === 'cpu baseline: same machine')?.detail ?? '', /another CPU/)
})

test('a CPU baseline taken with other runtime flags is not compared, and the detail names both sets', () => {
  const cpuConfig: GateConfig = { ...advisoryConfig, cpu: readGateConfig(new URL('../../bench/gate.config.json', import.meta.url)).cpu as NonNullable<GateConfig['cpu']> }
  const other = run([good])
  const baseline: RunResult = { ...other, machine: { ...other.machine, runtimeFlags: ['--expose-gc', '--v8-pool-size=1'] }, cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.65 }]) }
  const current: RunResult = { ...other, machine: { ...other.machine, runtimeFlags: ['--expose-gc'] }, cpu: cpuResult([{ median: 0.6, low: 0.55, high: 0.65 }]) }
  const only = evaluateGate(current, cpuConfig, { baseline, requireThroughput: false, baselineOnly: true, cpuDecides: false })
  assert.equal(only.status, 'inconclusive')
  assert.match(only.checks.find((c) => c.name === 'cpu baseline: same machine')?.detail ?? '', /\(--expose-gc --v8-pool-size=1\); this run on .*\(--expose-gc\)/)
  // A baseline from before flags were recorded is compared as before.
  const { runtimeFlags: _flags, ...unrecorded } = baseline.machine
  const old = evaluateGate(current, cpuConfig, { baseline: { ...baseline, machine: unrecorded }, requireThroughput: false, baselineOnly: true, cpuDecides: false })
  assert.equal(old.checks.some((c) => c.name === 'cpu baseline: same machine'), false)
})

test('the report and the Markdown summary name the runtime flags the run was taken with', () => {
  const base = run([good])
  const result: RunResult = { ...base, machine: { ...base.machine, runtimeFlags: ['--expose-gc', '--v8-pool-size=1'] } }
  assert.match(formatReport(result).split('\n')[0] ?? '', /Node v20\.20\.0 \(--expose-gc --v8-pool-size=1\)/)
  assert.match(formatMarkdown(result, evaluateGate(result, advisoryConfig)), /Node v20\.20\.0 \(--expose-gc --v8-pool-size=1\)/)
  assert.doesNotMatch(formatReport(base).split('\n')[0] ?? '', /\(--/)
})

test('the machine description records the flags of execArgv and NODE_OPTIONS', () => {
  const script = join(tempDir(), 'flags.mjs')
  writeFileSync(script, `import { describeMachine } from ${JSON.stringify(new URL('../bench/machine.js', import.meta.url).href)}\nprocess.stdout.write(JSON.stringify(describeMachine().runtimeFlags))\n`)
  const out = execFileSync(process.execPath, ['--v8-pool-size=1', script], { env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=512' }, encoding: 'utf8' })
  assert.deepEqual(JSON.parse(out), ['--v8-pool-size=1', '--max-old-space-size=512'])
})

test('the Markdown summary names the status, each deciding check with its figures, and what to do', () => {
  const result: RunResult = { ...run([good], 0.8), cpu: cpuResult([{ median: 1.6, low: 1.4, high: 1.8 }]) }
  const verdict = evaluateGate(result, advisoryConfig)
  const markdown = formatMarkdown(result, verdict)
  assert.match(markdown, /^## ❌ offload-store gate: FAIL/)
  assert.match(markdown, /\| ❌ \| cpu store\/s0: main-thread CPU per save \/ budget \| 1\.600 \| 1\.000 \|/)
  assert.match(markdown, /\*\*What to do\*\*/)
  assert.match(markdown, /<details><summary>Advisory checks/)
})

test('the shipped gate config has a CPU section, and its loop and throughput rules are advisory', () => {
  const shipped = readGateConfig(new URL('../../bench/gate.config.json', import.meta.url))
  assert.equal(shipped.loopLatency.advisory, true)
  assert.equal(shipped.throughput.advisory, true)
  assert.ok(shipped.cpu !== undefined && shipped.cpu.maxRatioToBase > 1 && shipped.cpu.timeBudgetMs <= 30_000)
})
