import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
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
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { timeout: 15_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: unknown, stdout?: string, stderr?: string }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

test('offload-store-bench --json prints every mode\'s figures and a gate verdict, and its exit code follows the verdict', async () => {
  const { code, stdout } = await cli('--codec', codec, '--sample', sample, '--json', '--duration', '200', '--pattern', 'save-10ms')
  const out = JSON.parse(stdout) as {
    scope: string
    machine: { cores: number, node: string }
    loopLatency: Array<{ params: { name: string, encoder: string, pattern: string, actualBytes: number }, modes: Record<string, { loop: { p50Ms: number, p99Ms: number, maxMs: number, elu: number }, writes: number }> }>
    gate: { pass: boolean, checks: Array<{ name: string, pass: boolean, actual: number, limit: number, detail: string }> }
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
  assert.equal(code, out.gate.pass ? 0 : 1)
})

test('offload-store-bench prints the table and the verdict without --json', async () => {
  const { code, stdout } = await cli('--codec', codec, '--sample', sample, '--duration', '200', '--pattern', 'delay-storm')
  assert.match(stdout, /offloaded/)
  assert.match(stdout, /Gate: (PASS|FAIL)/)
  assert.equal(code, /Gate: PASS/.test(stdout) ? 0 : 1)
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
