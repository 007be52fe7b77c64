import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { injectedCopy } from '../bench/inject.js'
import { tempDir } from './helpers.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const distBench = new URL('../bench/', import.meta.url)

// A scenario that hangs cannot be timed out from inside its own process when the saves run in
// microtasks (no timer fires), so it runs in a child, killed if it outlives a generous limit.
test('the many-stores scenario finishes on time when saves resolve in microtasks (no worker)', async () => {
  const copy = injectedCopy(root, join(tempDir('offload-store-bench-inject-'), 'no-worker'), 'no-worker')
  const work = tempDir('offload-store-bench-many-')
  const script = `
    const lib = await import(${JSON.stringify(new URL('dist/src/index.js', `file://${copy}/`).href)})
    const { runManyStores } = await import(${JSON.stringify(new URL('scenarios/many-stores.js', distBench).href)})
    const pool = new lib.WriterPool({})
    const started = performance.now()
    const result = await runManyStores({ dir: ${JSON.stringify(work)}, pool, stores: 4, durationMs: 300, lib })
    await pool.close()
    console.log(JSON.stringify({ writes: result.writesPerSec, elapsedMs: performance.now() - started }))`
  const started = performance.now()
  let out: { writes: number, elapsedMs: number }
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, killSignal: 'SIGKILL' })
    out = JSON.parse(stdout) as { writes: number, elapsedMs: number }
  } catch (err) {
    assert.fail(`the scenario did not finish: killed after ${(performance.now() - started).toFixed(0)} ms (${(err as Error).message.split('\n')[0] ?? ''})`)
  }
  assert.ok(out.writes > 0, 'the inline saves wrote')
  assert.ok(out.elapsedMs < 10_000, `finished in ${out.elapsedMs.toFixed(0)} ms`)
})
