import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { EXIT, type GateStatus } from '../bench/gate.js'
import { tempDir } from './helpers.js'

const run = promisify(execFile)
const bin = fileURLToPath(new URL('../bench/cli.js', import.meta.url))
const dir = tempDir('offload-store-bench-cli-')
const codec = join(dir, 'tiny-codec.mjs')
const sample = join(dir, 'state.json')
writeFileSync(codec, 'export const encode = (value) => JSON.stringify(value)\nexport const decode = (bytes) => JSON.parse(Buffer.from(bytes).toString())\n')
writeFileSync(sample, JSON.stringify({ items: [{ id: 1, name: 'a' }, { id: 2, name: 'b' }] }))

interface CliRun { code: number, stdout: string, stderr: string }

async function cli (...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: unknown, stdout?: string, stderr?: string }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

// A short CPU verdict: these tests check the bin's behaviour, the self-test checks its reliability.
const QUICK = ['--time-budget', '3000']

test('offload-store-bench --json prints every mode\'s figures and a gate verdict, and its exit code follows the verdict', async () => {
  const { code, stdout } = await cli('--codec', codec, '--sample', sample, '--json', '--duration', '200', '--pattern', 'save-10ms', ...QUICK)
  const out = JSON.parse(stdout) as {
    scope: string
    machine: { cores: number, node: string }
    loopLatency: Array<{ params: { name: string, encoder: string, pattern: string, actualBytes: number }, modes: Record<string, { loop: { p50Ms: number, p99Ms: number, maxMs: number, elu: number }, writes: number }> }>
    cpu: { reference: { budgetApplies: boolean }, subjects: Array<{ name: string, cpuPerSaveMs: number, advisory: boolean }> }
    gate: { pass: boolean, status: GateStatus, checks: Array<{ name: string, pass: boolean, actual: number, limit: number, detail: string }> }
  }
  assert.equal(out.scope, 'user')
  assert.equal(out.machine.node, process.version)
  assert.equal(out.loopLatency.length, 1)
  const scenario = out.loopLatency[0]
  assert.ok(scenario !== undefined)
  assert.equal(scenario.params.encoder, 'user')
  assert.equal(scenario.params.pattern, 'save-10ms')
  assert.deepEqual(Object.keys(scenario.modes).sort(), ['idle', 'inline', 'offloaded'])
  for (const figures of Object.values(scenario.modes)) {
    for (const value of [figures.loop.p50Ms, figures.loop.p99Ms, figures.loop.maxMs, figures.loop.elu]) assert.ok(Number.isFinite(value) && value >= 0)
  }
  assert.ok((scenario.modes['offloaded']?.writes ?? 0) > 0, 'the offloaded mode wrote')
  assert.ok(out.gate.checks.length > 0)
  assert.equal(out.cpu.subjects[0]?.name, 'store/user-codec')
  assert.ok((out.cpu.subjects[0]?.cpuPerSaveMs ?? 0) > 0)
  assert.equal(code, EXIT[out.gate.status])
})

test('offload-store-bench prints the table and the verdict without --json', async () => {
  const { code, stdout } = await cli('--codec', codec, '--sample', sample, '--duration', '200', '--pattern', 'delay-storm', ...QUICK)
  assert.match(stdout, /offloaded/)
  const status = /Gate: (PASS|FAIL|INCONCLUSIVE)/.exec(stdout)?.[1]?.toLowerCase() as GateStatus | undefined
  assert.ok(status !== undefined, stdout)
  assert.equal(code, EXIT[status])
})

test('offload-store-bench exits 2 with the usage on a missing --codec', async () => {
  const { code, stderr } = await cli('--sample', sample)
  assert.equal(code, 2)
  assert.match(stderr, /--codec is required/)
})

test('offload-store-bench exits 2 when the codec module has no encode export', async () => {
  const bad = join(dir, 'no-encode.mjs')
  writeFileSync(bad, 'export const decode = () => null\n')
  const { code, stderr } = await cli('--codec', bad, '--sample', sample)
  assert.equal(code, 2)
  assert.match(stderr, /no exported function "encode"/)
})

test('offload-store-bench --help explains --config, --baseline, --baseline-only and --pattern, and every exit code', async () => {
  const { code, stdout } = await cli('--help')
  assert.equal(code, 0)
  for (const option of ['--config', '--baseline', '--baseline-only', '--pattern', '--markdown', '--out', '--time-budget']) assert.match(stdout, new RegExp(`^ {2}${option} `, 'm'), option)
  assert.match(stdout, /0 pass, 1 fail, 2 error .*\n.*3 inconclusive/)
})

test('--out writes the JSON a later --baseline reads, and --markdown appends a summary of both runs', async () => {
  const first = join(dir, 'first.json')
  const summary = join(dir, 'summary.md')
  const one = await cli('--codec', codec, '--sample', sample, '--pattern', 'none', '--out', first, '--markdown', summary, ...QUICK)
  const stored = JSON.parse(readFileSync(first, 'utf8')) as { schemaVersion: number, gate: { status: GateStatus } }
  assert.equal(stored.schemaVersion, 2)
  assert.equal(one.code, EXIT[stored.gate.status])
  const two = await cli('--codec', codec, '--sample', sample, '--pattern', 'none', '--baseline', first, '--baseline-only', '--json', '--markdown', summary, ...QUICK)
  const out = JSON.parse(two.stdout) as { gate: { status: GateStatus, checks: Array<{ name: string, advisory?: boolean }> } }
  const compared = out.gate.checks.filter((c) => c.name.startsWith('cpu baseline'))
  assert.equal(compared.length, 1)
  assert.notEqual(compared[0]?.advisory, true, 'the baseline decides in --baseline-only')
  assert.ok(out.gate.checks.filter((c) => c.name.startsWith('cpu store')).every((c) => c.advisory === true), 'the budget is reported only')
  assert.equal(two.code, EXIT[out.gate.status])
  const markdown = readFileSync(summary, 'utf8')
  assert.equal(markdown.match(/^## .* offload-store-bench: (PASS|FAIL|INCONCLUSIVE)$/gm)?.length, 2)
})

test('offload-store-bench exits 2 on --baseline-only without --baseline, and on a baseline of another schema', async () => {
  const only = await cli('--codec', codec, '--sample', sample, '--baseline-only')
  assert.equal(only.code, 2)
  assert.match(only.stderr, /--baseline-only needs --baseline/)
  const old = join(dir, 'old.json')
  writeFileSync(old, JSON.stringify({ schemaVersion: 1 }))
  const stale = await cli('--codec', codec, '--sample', sample, '--baseline', old)
  assert.equal(stale.code, 2)
  assert.match(stale.stderr, /schemaVersion 1/)
})

test('a sample too small for a budget (its clone costs less than the thread hops) is reported, never failed', async () => {
  const { code, stdout } = await cli('--codec', codec, '--sample', sample, '--json', '--pattern', 'none', ...QUICK)
  const out = JSON.parse(stdout) as { cpu: { reference: { budgetApplies: boolean }, subjects: Array<{ advisory: boolean }> }, gate: { status: GateStatus, checks: Array<{ name: string, advisory?: boolean }> } }
  assert.equal(out.cpu.reference.budgetApplies, false)
  assert.equal(out.cpu.subjects[0]?.advisory, true)
  assert.equal(out.gate.checks.find((c) => c.name.startsWith('cpu store/user-codec'))?.advisory, true)
  assert.equal(out.gate.status, 'pass')
  assert.equal(code, 0)
})
