import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { WriterPool } from 'offload-store'
import { type BenchState, generateState, mutateState } from './data.js'
import { type BenchEncoder, benchEncoder, type EncoderName } from './encoders.js'
import { evaluateGate, type GateVerdict, readGateConfig } from './gate.js'
import { describeMachine } from './machine.js'
import { memorySnapshot } from './memory.js'
import { progressLine } from './progress.js'
import { formatReport, sizeLabel } from './report-table.js'
import type { MemoryCheckpoint, RunResult } from './run-result.js'
import { runHandoffCost } from './scenarios/handoff-cost.js'
import { type KeyedLargeResult, runKeyedLarge } from './scenarios/keyed-large.js'
import { type LoopLatencyResult, runLoopLatency } from './scenarios/loop-latency.js'
import { runManyStores } from './scenarios/many-stores.js'
import { runThroughput } from './scenarios/throughput.js'
import { type LoopScenarioSpec, suitePlan } from './suite.js'

// The suite's driver: `npm run bench` (full), `bench:quick`, `bench:gate` (quick + gate).

const USAGE = `usage: node dist/bench/index.js [--scope quick|full] [--reporter pretty|json] [--out dir]
       [--gate] [--config gate.config.json] [--baseline previous.json] [--no-chart]`

const { values: args } = parseArgs({
  options: {
    scope: { type: 'string', default: 'full' },
    reporter: { type: 'string', default: 'pretty' },
    out: { type: 'string' },
    gate: { type: 'boolean', default: false },
    config: { type: 'string' },
    baseline: { type: 'string' },
    'no-chart': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (args.help === true) {
  console.log(USAGE)
  process.exit(0)
}
const scope = args.scope
const reporter = args.reporter
if ((scope !== 'quick' && scope !== 'full') || (reporter !== 'pretty' && reporter !== 'json')) {
  console.error(USAGE)
  process.exit(2)
}

const root = fileURLToPath(new URL('../../', import.meta.url))
const outDir = resolve(args.out ?? join(root, 'bench', 'results'))
const config = readGateConfig(args.config ?? join(root, 'bench', 'gate.config.json'))
const baseline = args.baseline === undefined ? undefined : JSON.parse(readFileSync(args.baseline, 'utf8')) as RunResult

const plan = suitePlan(scope)
const workDir = mkdtempSync(join(tmpdir(), 'offload-store-bench-'))
// Idle workers outlive the gaps between scenarios, so no scenario pays for a thread start.
const pool = new WriterPool({ idleTimeout: 120_000 })
const progress = progressLine(plan.loopScenarios.length + plan.repeats + 3 + (plan.keyed === undefined ? 0 : 1))
const memory: MemoryCheckpoint[] = []
const states = new Map<number, BenchState>()
const encoders = new Map<EncoderName, BenchEncoder>()
const startedAt = new Date().toISOString()

async function loopScenario (spec: LoopScenarioSpec, label = ''): Promise<LoopLatencyResult> {
  let state = states.get(spec.sizeBytes)
  if (state === undefined) {
    state = generateState(spec.sizeBytes)
    states.set(spec.sizeBytes, state)
  }
  let encoder = encoders.get(spec.encoder)
  if (encoder === undefined) {
    encoder = await benchEncoder(spec.encoder)
    encoders.set(spec.encoder, encoder)
  }
  const name = `${spec.encoder}/${sizeLabel(spec.sizeBytes)}/${spec.pattern}`
  progress.step(`loop latency ${name}${label}`)
  const current = state
  const result = await runLoopLatency(
    { name, sizeBytes: spec.sizeBytes, actualBytes: JSON.stringify(state).length, encoder: spec.encoder, pattern: spec.pattern, durationMs: plan.loopDurationMs, rounds: plan.loopRounds },
    { encoder, state, mutate: (step) => { mutateState(current, step) }, dir: workDir, pool }
  )
  memory.push({ after: `${name}${label}`, ...memorySnapshot() })
  return result
}

let exitCode = 0
try {
  const loopLatency: LoopLatencyResult[] = []
  for (const spec of plan.loopScenarios) loopLatency.push(await loopScenario(spec))

  progress.step('throughput: save() against the bare fsync loop')
  const throughput = await runThroughput({ dir: workDir, pool, ...plan.throughput })
  memory.push({ after: 'throughput', ...memorySnapshot() })

  progress.step(`many stores: ${plan.manyStores.stores} saving concurrently`)
  const manyStores = await runManyStores({ dir: workDir, pool, ...plan.manyStores })
  memory.push({ after: 'many-stores', ...memorySnapshot() })

  progress.step('hand-off cost against JSON.stringify')
  const handoff = await runHandoffCost({ dir: workDir, pool, sizes: plan.handoffSizes, timePerTaskMs: 300 })
  memory.push({ after: 'handoff', ...memorySnapshot() })

  let keyed: KeyedLargeResult | undefined
  if (plan.keyed !== undefined) {
    progress.step(`keyed state of ${sizeLabel(plan.keyed.stateBytes)}: changes only, and the journal`)
    keyed = await runKeyedLarge({ dir: workDir, pool, ...plan.keyed })
    memory.push({ after: 'keyed', ...memorySnapshot() })
  }

  // Run the first scenario again: heap after each repeat should stay level.
  const first = plan.loopScenarios[0]
  if (first !== undefined) {
    for (let i = 0; i < plan.repeats; i++) await loopScenario(first, ` (repeat ${i + 1})`)
  }
  progress.done()

  const result: RunResult = {
    schemaVersion: 2,
    scope,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: describeMachine(),
    loopLatency,
    throughput,
    manyStores,
    handoff,
    ...(keyed === undefined ? {} : { keyed }),
    memory
  }
  mkdirSync(outDir, { recursive: true })
  const base = join(outDir, startedAt.replace(/[:.]/g, '-'))
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n')
  if (args['no-chart'] !== true) {
    try {
      const { writeChart } = await import('./chart.js')
      await writeChart(result, `${base}.svg`)
    } catch (err) {
      console.error(`chart skipped: ${(err as Error).message}`)
    }
  }
  console.error(`wrote ${base}.json`)

  let verdict: GateVerdict | undefined
  if (args.gate === true || baseline !== undefined) {
    verdict = evaluateGate(result, config, baseline === undefined ? {} : { baseline })
    if (!verdict.pass) exitCode = 1
  }
  if (reporter === 'json') console.log(JSON.stringify(verdict === undefined ? result : { ...result, gate: verdict }, null, 2))
  else console.log(formatReport(result, verdict))
} finally {
  await pool.close()
  rmSync(workDir, { recursive: true, force: true })
}
process.exitCode = exitCode
