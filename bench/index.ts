import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { WriterPool } from 'offload-store'
import { installedBuild, type Library, loadBuild } from './builds.js'
import { type CpuSubjectSpec, runCpuVerdict } from './cpu-verdict.js'
import { type BenchState, generateState, mutateState } from './data.js'
import { type BenchEncoder, benchEncoder, type EncoderName } from './encoders.js'
import { EXIT, evaluateGate, type GateConfig, type GateVerdict, readGateConfig } from './gate.js'
import { describeMachine } from './machine.js'
import { memorySnapshot } from './memory.js'
import { emitError, emitRun, type OutputOptions } from './output.js'
import { progressLine } from './progress.js'
import { sizeLabel } from './report-table.js'
import type { MemoryCheckpoint, RunResult } from './run-result.js'
import { runCodecCost } from './scenarios/codec-cost.js'
import { runHandoffCost } from './scenarios/handoff-cost.js'
import { type KeyedLargeResult, runKeyedLarge } from './scenarios/keyed-large.js'
import { type LoopLatencyResult, runLoopLatency } from './scenarios/loop-latency.js'
import { runManyStores } from './scenarios/many-stores.js'
import { runMillion } from './scenarios/million.js'
import { runPostgres } from './scenarios/postgres.js'
import { runThroughput } from './scenarios/throughput.js'
import { type LoopScenarioSpec, suitePlan } from './suite.js'
import { withTimeLimit } from './time-limit.js'

// The suite's driver: `npm run bench` (full), `bench:quick`, `bench:gate` (quick + gate),
// `bench:verdict` (the gate's deciding CPU rule alone). Exit codes: see EXIT in gate.ts.

const USAGE = `usage: node dist/bench/index.js [--scope quick|full] [--reporter pretty|json] [--out dir] [--no-chart]
       [--gate] [--verdict-only] [--baseline-build dir] [--config gate.config.json]
       [--baseline previous.json] [--markdown summary.md] [--time-budget ms]

  --gate            judge the run: the CPU verdict decides, loop delay and throughput are reported
  --verdict-only    measure only the CPU verdict (seconds), no loop-latency suite
  --baseline-build  a checkout (or its dist/) of the base branch, loaded into this process: the
                    candidate's main-thread CPU per save is compared with the base build's, side by side
  --baseline        a previous run's JSON from the same machine, compared figure by figure
  --markdown        append a Markdown summary to this file (e.g. "$GITHUB_STEP_SUMMARY")
  --time-budget     ms the CPU verdict may take before it reports inconclusive (config: cpu.timeBudgetMs)
exit code: 0 pass, 1 fail, 2 error (bad arguments, a scenario that timed out), 3 inconclusive`

const root = fileURLToPath(new URL('../../', import.meta.url))

/** Time limit of a scenario: a hang is reported as an error instead of stalling the gate. */
const limitFor = (expectedMs: number): number => expectedMs * 4 + 60_000

/**
 * The suite's CPU subjects: a light JSON codec run in the worker through codecs.module() (its
 * main-thread share is the hand-off alone, so it has a budget), and the JSON codec, whose main
 * thread also checks the value (judged against a base build; its budget ratio is reported).
 */
function cpuSubjects (sizeBytes: number): CpuSubjectSpec[] {
  const light = new URL('./codecs/light-codec.js', import.meta.url)
  return [
    { name: `store/json/${sizeLabel(sizeBytes)}`, codec: (lib: Library) => lib.codecs.json(), budgetDecides: false },
    { name: `store/module/${sizeLabel(sizeBytes)}`, codec: (lib: Library) => lib.codecs.module(light) }
  ]
}

async function main (output: OutputOptions, args: Record<string, string | boolean | undefined>): Promise<number> {
  const scope = args['scope']
  if (scope !== 'quick' && scope !== 'full') throw new UsageError(`--scope must be quick or full, got ${JSON.stringify(scope)}`)
  const gate = args['gate'] === true || args['verdict-only'] === true || args['baseline'] !== undefined || args['baseline-build'] !== undefined
  const verdictOnly = args['verdict-only'] === true
  const configPath = typeof args['config'] === 'string' ? args['config'] : join(root, 'bench', 'gate.config.json')
  const config: GateConfig = readGateConfig(configPath)
  const baseline = typeof args['baseline'] === 'string' ? JSON.parse(readFileSync(args['baseline'], 'utf8')) as RunResult : undefined
  const budget = args['time-budget']
  const cpuSettings = config.cpu === undefined ? undefined : { ...config.cpu, ...(typeof budget === 'string' ? { timeBudgetMs: positiveInteger('--time-budget', budget) } : {}) }
  if (gate && cpuSettings === undefined) throw new UsageError(`${configPath} has no cpu section: the gate's deciding rule needs it`)

  const plan = suitePlan(scope)
  const workDir = mkdtempSync(join(tmpdir(), 'offload-store-bench-'))
  const startedAt = new Date().toISOString()
  const result: { -readonly [K in keyof RunResult]: RunResult[K] } = { schemaVersion: 2, scope, startedAt, finishedAt: startedAt, machine: describeMachine(), loopLatency: [], memory: [] }
  const steps = (gate ? 1 : 0) + (verdictOnly ? 0 : plan.loopScenarios.length + plan.repeats + 3 + (plan.keyed === undefined ? 0 : 1) + (plan.million === undefined ? 0 : 1) + (plan.postgres === undefined ? 0 : 1))
  const progress = progressLine(steps)
  try {
    if (gate && cpuSettings !== undefined) {
      const candidate = await installedBuild()
      const base = typeof args['baseline-build'] === 'string' ? await loadBuild(args['baseline-build']) : undefined
      progress.step(`CPU per save${base === undefined ? ' against its budget' : ` against ${base.entry}`}`)
      const state = generateState(cpuSettings.stateBytes)
      result.cpu = await runCpuVerdict({
        lib: candidate.lib,
        ...(base === undefined ? {} : { base }),
        subjects: cpuSubjects(cpuSettings.stateBytes),
        state,
        stateBytes: JSON.stringify(state).length,
        mutate: (step) => { mutateState(state, step) },
        dir: workDir,
        settings: cpuSettings
      })
    }
    if (!verdictOnly) await runSuite(plan, result, workDir, progress.step)
    progress.done()
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
  result.finishedAt = new Date().toISOString()

  if (!verdictOnly || typeof args['out'] === 'string') {
    const outDir = resolve(typeof args['out'] === 'string' ? args['out'] : join(root, 'bench', 'results'))
    mkdirSync(outDir, { recursive: true })
    const file = join(outDir, startedAt.replace(/[:.]/g, '-'))
    writeFileSync(`${file}.json`, JSON.stringify(result, null, 2) + '\n')
    if (args['no-chart'] !== true && !verdictOnly) {
      try {
        const { writeChart } = await import('./chart.js')
        await writeChart(result, `${file}.svg`, config.targets)
      } catch (err) {
        console.error(`chart skipped: ${(err as Error).message}`)
      }
    }
    console.error(`wrote ${file}.json`)
  }
  let verdict: GateVerdict | undefined
  if (gate) verdict = evaluateGate(result, config, { ...(baseline === undefined ? {} : { baseline }), cpuOnly: verdictOnly })
  return emitRun(result, verdict, { ...output, targets: config.targets })
}

async function runSuite (plan: ReturnType<typeof suitePlan>, result: { loopLatency: RunResult['loopLatency'], memory: RunResult['memory'], throughput?: RunResult['throughput'], manyStores?: RunResult['manyStores'], handoff?: RunResult['handoff'], keyed?: KeyedLargeResult, million?: RunResult['million'], codecCost?: RunResult['codecCost'], postgres?: RunResult['postgres'] }, workDir: string, step: (label: string) => void): Promise<void> {
  // Idle workers outlive the gaps between scenarios, so no scenario pays for a thread start.
  const pool = new WriterPool({ idleTimeout: 120_000 })
  const memory: MemoryCheckpoint[] = []
  const states = new Map<number, BenchState>()
  const encoders = new Map<EncoderName, BenchEncoder>()
  const loopScenario = async (spec: LoopScenarioSpec, label = ''): Promise<LoopLatencyResult> => {
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
    step(`loop latency ${name}${label}`)
    const current = state
    const run = runLoopLatency(
      { name, sizeBytes: spec.sizeBytes, actualBytes: JSON.stringify(state).length, encoder: spec.encoder, pattern: spec.pattern, durationMs: plan.loopDurationMs, rounds: plan.loopRounds },
      { encoder, state, mutate: (i) => { mutateState(current, i) }, dir: workDir, pool }
    )
    const scenario = await withTimeLimit(`loop latency ${name}`, limitFor(plan.loopDurationMs * 3), run)
    memory.push({ after: `${name}${label}`, ...memorySnapshot() })
    return scenario
  }
  try {
    const loopLatency: LoopLatencyResult[] = []
    for (const spec of plan.loopScenarios) loopLatency.push(await loopScenario(spec))
    result.loopLatency = loopLatency

    step('throughput: save() against the bare fsync loop')
    result.throughput = await withTimeLimit('throughput', limitFor(plan.throughput.rounds * plan.throughput.timePerTaskMs * 3), runThroughput({ dir: workDir, pool, ...plan.throughput, extended: plan.million !== undefined, hop: plan.million !== undefined }))
    memory.push({ after: 'throughput', ...memorySnapshot() })

    step(`many stores: ${plan.manyStores.stores} saving concurrently`)
    result.manyStores = await withTimeLimit('many stores', limitFor(plan.manyStores.durationMs), runManyStores({ dir: workDir, pool, ...plan.manyStores }))
    memory.push({ after: 'many-stores', ...memorySnapshot() })

    step('hand-off cost against JSON.stringify')
    result.handoff = await withTimeLimit('hand-off cost', limitFor(plan.handoffSizes.length * 2000), runHandoffCost({ dir: workDir, pool, sizes: plan.handoffSizes, timePerTaskMs: 300, everyCodec: plan.million !== undefined, floors: plan.million !== undefined }))
    memory.push({ after: 'handoff', ...memorySnapshot() })

    if (plan.keyed !== undefined) {
      step(`keyed state of ${sizeLabel(plan.keyed.stateBytes)}: changes only, and the journal`)
      result.keyed = await withTimeLimit('keyed state', limitFor(plan.keyed.durationMs * 3), runKeyedLarge({ dir: workDir, pool, ...plan.keyed }))
      memory.push({ after: 'keyed', ...memorySnapshot() })
    }

    if (plan.million !== undefined) {
      step('a million entries: KeyedStore.load() and first save against Store.load() and inline JSON')
      result.million = await withTimeLimit('million entries', limitFor(plan.million.repeats * 30_000), runMillion({ dir: workDir, ...plan.million }))
      memory.push({ after: 'million', ...memorySnapshot() })
    }

    if (plan.codecSizes !== undefined) {
      step('compression and encryption: offloaded against inline, file sizes, load paths')
      result.codecCost = await withTimeLimit('codec cost', limitFor(plan.codecSizes.length * 60_000), runCodecCost({ dir: workDir, pool, sizes: plan.codecSizes }))
      memory.push({ after: 'codec-cost', ...memorySnapshot() })
    }

    if (plan.postgres !== undefined) {
      const pgPlan = plan.postgres
      step('PostgreSQL: the target beside the file, and a bare pg loop')
      const parts = pgPlan.loopScenarios.length * 3 + pgPlan.throughput.payloadSizes.length + pgPlan.mainThread.sizes.length
      result.postgres = await withTimeLimit('postgres', limitFor(parts * pgPlan.loopDurationMs * 2), runPostgres({ dir: workDir, pool, plan: pgPlan }))
      memory.push({ after: 'postgres', ...memorySnapshot() })
    }

    // Run the first scenario again: heap after each repeat should stay level.
    const first = plan.loopScenarios[0]
    if (first !== undefined) {
      for (let i = 0; i < plan.repeats; i++) await loopScenario(first, ` (repeat ${i + 1})`)
    }
  } finally {
    result.memory = memory
    await pool.close()
  }
}

class UsageError extends Error {}

function positiveInteger (name: string, text: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(text)}`)
  return value
}

let code: number
let output: OutputOptions = { json: false }
try {
  const { values } = parseArgs({
    options: {
      scope: { type: 'string', default: 'full' },
      reporter: { type: 'string', default: 'pretty' },
      out: { type: 'string' },
      gate: { type: 'boolean', default: false },
      'verdict-only': { type: 'boolean', default: false },
      'baseline-build': { type: 'string' },
      config: { type: 'string' },
      baseline: { type: 'string' },
      markdown: { type: 'string' },
      'time-budget': { type: 'string' },
      'no-chart': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help === true) {
    console.log(USAGE)
    process.exit(EXIT.pass)
  }
  if (values.reporter !== 'pretty' && values.reporter !== 'json') throw new UsageError(`--reporter must be pretty or json, got ${JSON.stringify(values.reporter)}`)
  output = { json: values.reporter === 'json', ...(values.markdown === undefined ? {} : { markdown: values.markdown }) }
  code = await main(output, values)
} catch (err) {
  if (err instanceof UsageError || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') console.error(USAGE)
  code = emitError(err, output)
}
// Exit now: a worker a failed scenario left behind must not keep the gate alive.
process.exit(code)
