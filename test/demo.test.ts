import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { run } from './rel-helpers.js'

// The README's first command ends in `npm run demo`: it must run, print its three modes, and show
// the point it exists to make, measured in its own run: the encoder offloaded costs the main thread
// far less per save than the same encoder inline.
test('npm run demo prints idle, inline and offloaded, and the offloaded save costs the main thread less than half the inline one', { timeout: 120_000 }, async () => {
  const demo = fileURLToPath(new URL('../examples/demo/demo.js', import.meta.url))
  const result = await run(process.execPath, [demo], { env: { ...process.env, DEMO_ROUNDS: '2', DEMO_WINDOW_MS: '400' }, killAfterMs: 110_000 })
  assert.equal(result.code, 0, result.stderr)
  const row = (mode: string): string[] => {
    const line = result.stdout.split('\n').find((l) => l.includes(`'${mode}'`))
    assert.ok(line !== undefined, `a row for ${mode} in:\n${result.stdout}`)
    return line.split('│').map((cell) => cell.trim().replace(/'/g, ''))
  }
  row('idle')
  const cpuPerSave = (mode: string): number => Number(row(mode).at(-2))
  const inline = cpuPerSave('inline')
  const offloaded = cpuPerSave('offloaded')
  assert.ok(Number.isFinite(inline) && Number.isFinite(offloaded), result.stdout)
  assert.ok(offloaded < inline / 2, `main-thread CPU per save: offloaded ${offloaded} ms, inline ${inline} ms`)
})
