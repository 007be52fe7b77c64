#!/usr/bin/env node
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { WriterPool } from 'offload-store'
import { moduleEncoder } from './encoders.js'
import { evaluateGate, readGateConfig } from './gate.js'
import { describeMachine } from './machine.js'
import { memorySnapshot } from './memory.js'
import { progressLine } from './progress.js'
import { formatReport, sizeLabel } from './report-table.js'
import type { MemoryCheckpoint, RunResult } from './run-result.js'
import { type LoadPattern, type LoopLatencyResult, runLoopLatency } from './scenarios/loop-latency.js'

// `offload-store-bench`: the loop-latency scenarios and the gate, run on the user's own encoder and
// data, so "our encoder must not block the loop" can be a CI step. Chart-free: vega is dev-only.

const USAGE = `usage: offload-store-bench --codec ./my-codec.mjs --sample ./state.json [--json]
       [--duration ms] [--pattern save-10ms|delay-storm|both] [--config gate.json] [--baseline previous.json]

  --codec     an ES module exporting encode(value) -> string | Uint8Array (and decode(bytes) for load())
  --sample    a JSON file holding a realistic state, saved as the value in every scenario
  --duration  measured time per mode in ms (default 3000), in interleaved windows of about 500 ms
  --json      print the result and the gate verdict as JSON
exit code: 0 gate passed, 1 gate failed, 2 usage or input error`

/** Target length of one interleaved window of a mode, ms. */
const WINDOW_MS = 500
const EXIT_FAIL = 1
const EXIT_USAGE = 2

// The shipped thresholds sit at the bench package's root: one level up from its compiled dist/, or
// bench/ beside the repository's dist/ when run from a checkout.
function defaultGateConfig (): URL {
  const packaged = new URL('../gate.config.json', import.meta.url)
  return existsSync(packaged) ? packaged : new URL('../../bench/gate.config.json', import.meta.url)
}

function usageError (message: string): never {
  console.error(`offload-store-bench: ${message}\n${USAGE}`)
  process.exit(EXIT_USAGE)
}

let parsed
try {
  parsed = parseArgs({
    options: {
      codec: { type: 'string' },
      sample: { type: 'string' },
      json: { type: 'boolean', default: false },
      duration: { type: 'string', default: '3000' },
      pattern: { type: 'string', default: 'both' },
      config: { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  })
} catch (err) {
  usageError((err as Error).message)
}
const args = parsed.values
if (args.help === true) {
  console.log(USAGE)
  process.exit(0)
}
if (args.codec === undefined) usageError('--codec is required')
if (args.sample === undefined) usageError('--sample is required')
const durationMs = Number(args.duration)
if (!Number.isInteger(durationMs) || durationMs < 100) usageError(`--duration must be an integer >= 100 (ms), got ${JSON.stringify(args.duration)}`)
const patterns: LoadPattern[] = args.pattern === 'both' ? ['save-10ms', 'delay-storm'] : args.pattern === 'save-10ms' || args.pattern === 'delay-storm' ? [args.pattern] : usageError(`--pattern must be save-10ms, delay-storm or both, got ${JSON.stringify(args.pattern)}`)

let sample: unknown
let sampleBytes: number
try {
  const text = readFileSync(args.sample, 'utf8')
  sample = JSON.parse(text)
  sampleBytes = Buffer.byteLength(text)
} catch (err) {
  usageError(`cannot read --sample ${args.sample}: ${(err as Error).message}`)
}
let encoder
try {
  encoder = await moduleEncoder('user', pathToFileURL(resolve(args.codec)))
} catch (err) {
  usageError(`cannot load --codec ${args.codec}: ${(err as Error).message}`)
}
const config = readGateConfig(args.config ?? defaultGateConfig())
const baseline = args.baseline === undefined ? undefined : JSON.parse(readFileSync(args.baseline, 'utf8')) as RunResult

const workDir = mkdtempSync(join(tmpdir(), 'offload-store-bench-'))
const pool = new WriterPool({ idleTimeout: 60_000 })
const progress = progressLine(patterns.length)
const startedAt = new Date().toISOString()
const loopLatency: LoopLatencyResult[] = []
const memory: MemoryCheckpoint[] = []
try {
  for (const pattern of patterns) {
    const name = `user/${sizeLabel(sampleBytes)}/${pattern}`
    progress.step(`loop latency ${name}`)
    loopLatency.push(await runLoopLatency(
      { name, sizeBytes: sampleBytes, actualBytes: sampleBytes, encoder: encoder.name, pattern, durationMs, rounds: Math.max(1, Math.round(durationMs / WINDOW_MS)) },
      // The sample's shape is unknown, so it is saved as is: every save is still a full encode and write.
      { encoder, state: sample, mutate: () => {}, dir: workDir, pool }
    ))
    memory.push({ after: name, ...memorySnapshot() })
  }
  progress.done()
} finally {
  await pool.close()
  rmSync(workDir, { recursive: true, force: true })
}

const result: RunResult = { schemaVersion: 2, scope: 'user', startedAt, finishedAt: new Date().toISOString(), machine: describeMachine(), loopLatency, memory }
// Every scenario here is the user's; throughput is the library's own figure, measured by the suite.
const verdict = evaluateGate(result, config, { scenarioFilter: () => true, requireThroughput: false, ...(baseline === undefined ? {} : { baseline }) })
if (args.json === true) console.log(JSON.stringify({ ...result, gate: verdict }, null, 2))
else console.log(formatReport(result, verdict))
process.exitCode = verdict.pass ? 0 : EXIT_FAIL
