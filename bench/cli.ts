#!/usr/bin/env node
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { WriterPool } from 'offload-store'
import { installedBuild } from './builds.js'
import { runCpuVerdict } from './cpu-verdict.js'
import { type BenchEncoder, moduleEncoder } from './encoders.js'
import { EXIT, evaluateGate, type GateConfig, readGateConfig } from './gate.js'
import { describeMachine } from './machine.js'
import { memorySnapshot } from './memory.js'
import { emitError, emitRun, type OutputOptions } from './output.js'
import { progressLine } from './progress.js'
import { sizeLabel } from './report-table.js'
import type { MemoryCheckpoint, RunResult } from './run-result.js'
import { type LoadPattern, type LoopLatencyResult, runLoopLatency } from './scenarios/loop-latency.js'
import { withTimeLimit } from './time-limit.js'

// `offload-store-bench`: the gate, run on the user's own codec and data, so "our encoder must not
// cost the main thread" can be a CI step. Chart-free: vega is dev-only.

const USAGE = `usage: offload-store-bench --codec ./my-codec.mjs --sample ./state.json [options]

Judges what you control: the main-thread CPU time each durable save of a Store with your codec
costs, saving your sample. It is measured in short interleaved slices, in this process, against a
budget measured in the same slices: 0.85 of a structured clone of your sample (handing a value to
a thread serializes it) plus 10 bare round trips to a worker thread. The verdict is the median of
the per-round ratios with a bootstrap interval: PASS when the interval is below 1, FAIL when above,
INCONCLUSIVE when the time budget ran out first. Event-loop delay (idle, inline, offloaded) is
measured too and reported, with advice, but does not decide (see docs/ci-gate.md).

  --codec file      an ES module exporting encode(value) -> string | Uint8Array (and decode(bytes)),
                    the module you pass to codecs.module()
  --sample file     a JSON file holding a realistic state, saved as is in every scenario
  --config file     thresholds as JSON (default: this package's gate.config.json). cpu.budget sets
                    the budget (cloneFactor, hopFactor), cpu.timeBudgetMs the time the CPU verdict may
                    take, cpu.maxRegressionPercent what --baseline allows; loopLatency and throughput
                    hold the reported loop-delay rules
  --baseline file   a previous run's JSON (from --out or --json) taken on the same machine type and
                    Node version: CPU per save, as a share of the budget, may grow by at most
                    cpu.maxRegressionPercent (default 25%). From another machine it is not compared.
  --baseline-only   judge only against --baseline (for a codec whose absolute figures you accept
                    as they are); the budget and loop-delay rules are then reported, not deciding
  --pattern p       loop-delay scenarios: save-10ms (a save() every 10 ms), delay-storm (bursts of
                    delaySave() calls), both (default), or none (the CPU verdict only)
  --duration ms     measured time per mode of each loop-delay scenario (default 2000)
  --time-budget ms  how long the CPU verdict may take (default: cpu.timeBudgetMs, 15000)
  --json            print the result and the verdict as JSON on stdout (schemaVersion 2)
  --out file        also write that JSON to a file: keep it as the next run's --baseline
  --markdown file   append a Markdown summary, e.g. --markdown "$GITHUB_STEP_SUMMARY"
exit code: 0 pass, 1 fail, 2 error (bad arguments, unreadable input, a scenario that timed out),
           3 inconclusive (the machine was too noisy to decide in the time budget: rerun)`

/** Target length of one interleaved window of a mode, ms. */
const WINDOW_MS = 500

class UsageError extends Error {}

// The shipped thresholds sit at the bench package's root: one level up from its compiled dist/, or
// bench/ beside the repository's dist/ when run from a checkout.
function defaultGateConfig (): URL {
  const packaged = new URL('../gate.config.json', import.meta.url)
  return existsSync(packaged) ? packaged : new URL('../../bench/gate.config.json', import.meta.url)
}

function readBaseline (path: string): RunResult {
  let baseline: RunResult
  try {
    baseline = JSON.parse(readFileSync(path, 'utf8')) as RunResult
  } catch (err) {
    throw new UsageError(`cannot read --baseline ${path}: ${(err as Error).message}`)
  }
  if (baseline.schemaVersion !== 2) throw new UsageError(`--baseline ${path} has schemaVersion ${String(baseline.schemaVersion)}; this version reads 2: take a new baseline`)
  return baseline
}

async function main (args: ReturnType<typeof parse>, output: OutputOptions): Promise<number> {
  if (args.codec === undefined) throw new UsageError('--codec is required')
  if (args.sample === undefined) throw new UsageError('--sample is required')
  const durationMs = Number(args.duration)
  if (!Number.isInteger(durationMs) || durationMs < 100) throw new UsageError(`--duration must be an integer >= 100 (ms), got ${JSON.stringify(args.duration)}`)
  const pattern = args.pattern
  const patterns: LoadPattern[] = pattern === 'both' ? ['save-10ms', 'delay-storm'] : pattern === 'none' ? [] : pattern === 'save-10ms' || pattern === 'delay-storm' ? [pattern] : []
  if (!['both', 'none', 'save-10ms', 'delay-storm'].includes(pattern)) throw new UsageError(`--pattern must be save-10ms, delay-storm, both or none, got ${JSON.stringify(pattern)}`)
  if (args['baseline-only'] === true && args.baseline === undefined) throw new UsageError('--baseline-only needs --baseline')

  let sample: unknown
  let sampleBytes: number
  try {
    const text = readFileSync(args.sample, 'utf8')
    sample = JSON.parse(text)
    sampleBytes = Buffer.byteLength(text)
  } catch (err) {
    throw new UsageError(`cannot read --sample ${args.sample}: ${(err as Error).message}`)
  }
  const codecUrl = pathToFileURL(resolve(args.codec))
  let encoder: BenchEncoder
  try {
    encoder = await moduleEncoder('user', codecUrl)
  } catch (err) {
    throw new UsageError(`cannot load --codec ${args.codec}: ${(err as Error).message}`)
  }
  let config: GateConfig
  try {
    config = readGateConfig(args.config ?? defaultGateConfig())
  } catch (err) {
    throw new UsageError(`cannot read --config ${args.config ?? 'gate.config.json'}: ${(err as Error).message}`)
  }
  if (config.cpu === undefined) throw new UsageError('the gate config has no cpu section: the verdict needs it')
  const budget = args['time-budget']
  let timeBudgetMs = config.cpu.timeBudgetMs
  if (budget !== undefined) {
    timeBudgetMs = Number(budget)
    if (!Number.isInteger(timeBudgetMs) || timeBudgetMs <= 0) throw new UsageError(`--time-budget must be a positive integer (ms), got ${JSON.stringify(budget)}`)
  }
  const baseline = args.baseline === undefined ? undefined : readBaseline(args.baseline)

  const workDir = mkdtempSync(join(tmpdir(), 'offload-store-bench-'))
  const progress = progressLine(1 + patterns.length)
  const startedAt = new Date().toISOString()
  const loopLatency: LoopLatencyResult[] = []
  const memory: MemoryCheckpoint[] = []
  let cpu: RunResult['cpu']
  try {
    progress.step(`main-thread CPU per save of your codec, ${sizeLabel(sampleBytes)} sample`)
    const { lib } = await installedBuild()
    cpu = await runCpuVerdict({
      lib,
      // The sample's shape is unknown, so it is saved as is: every save is still a full encode and write.
      subjects: [{ name: 'store/user-codec', codec: (l) => l.codecs.module(codecUrl) }],
      state: sample,
      stateBytes: sampleBytes,
      mutate: () => {},
      dir: workDir,
      settings: { ...config.cpu, timeBudgetMs }
    })
    const pool = new WriterPool({ idleTimeout: 60_000 })
    try {
      for (const p of patterns) {
        const name = `user/${sizeLabel(sampleBytes)}/${p}`
        progress.step(`loop delay ${name}`)
        const run = runLoopLatency(
          { name, sizeBytes: sampleBytes, actualBytes: sampleBytes, encoder: encoder.name, pattern: p, durationMs, rounds: Math.max(1, Math.round(durationMs / WINDOW_MS)) },
          { encoder, state: sample, mutate: () => {}, dir: workDir, pool }
        )
        loopLatency.push(await withTimeLimit(`loop delay ${name}`, durationMs * 12 + 60_000, run))
        memory.push({ after: name, ...memorySnapshot() })
      }
    } finally {
      await pool.close()
    }
    progress.done()
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }

  const result: RunResult = { schemaVersion: 2, scope: 'user', startedAt, finishedAt: new Date().toISOString(), machine: describeMachine(), cpu, loopLatency, memory }
  // Throughput is the library's own figure, measured by its suite.
  const verdict = evaluateGate(result, config, {
    scenarioFilter: () => true,
    requireThroughput: false,
    cpuDecides: args['baseline-only'] !== true,
    baselineOnly: args['baseline-only'] === true,
    ...(baseline === undefined ? {} : { baseline })
  })
  if (args.out !== undefined) writeFileSync(args.out, JSON.stringify({ ...result, gate: verdict }, null, 2) + '\n')
  return emitRun(result, verdict, output)
}

function parse (): { codec?: string, sample?: string, json: boolean, duration: string, pattern: string, config?: string, baseline?: string, 'baseline-only': boolean, out?: string, markdown?: string, 'time-budget'?: string, help: boolean } {
  return parseArgs({
    options: {
      codec: { type: 'string' },
      sample: { type: 'string' },
      json: { type: 'boolean', default: false },
      duration: { type: 'string', default: '2000' },
      pattern: { type: 'string', default: 'both' },
      config: { type: 'string' },
      baseline: { type: 'string' },
      'baseline-only': { type: 'boolean', default: false },
      out: { type: 'string' },
      markdown: { type: 'string' },
      'time-budget': { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  }).values
}

let code: number
let output: OutputOptions = { json: false, title: 'offload-store-bench' }
try {
  const args = parse()
  if (args.help) {
    console.log(USAGE)
    process.exit(EXIT.pass)
  }
  output = { json: args.json, title: 'offload-store-bench', ...(args.markdown === undefined ? {} : { markdown: args.markdown }) }
  code = await main(args, output)
} catch (err) {
  if (err instanceof UsageError || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') console.error(`offload-store-bench: ${(err as Error).message}\n${USAGE}`)
  code = emitError(err, output)
}
// Exit now: a worker a failed scenario left behind must not keep the run alive.
process.exit(code)
