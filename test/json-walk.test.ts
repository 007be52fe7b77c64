import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { fixture, lastJson, run } from './rel-helpers.js'

// Every shape here once made save() walk the value forever. Each save runs in a child process that
// is killed after KILL_MS, so a regression fails the test instead of hanging the suite.

const dir = tempDir('offload-store-walk-')
const KILL_MS = 20_000
let n = 0

interface Outcome { readonly ok: boolean, readonly ms: number, readonly code?: string, readonly message?: string }

async function saveInChild (shape: string, size: number, codec = 'json'): Promise<Outcome> {
  const path = join(dir, `w${n++}.json`)
  const started = performance.now()
  const result = await run(process.execPath, [fixture('shape-child.js'), path, shape, String(size), codec], { killAfterMs: KILL_MS })
  assert.equal(result.signal, null, `save() of ${shape}(${size}) never returned: killed after ${Math.round(performance.now() - started)} ms`)
  assert.equal(result.code, 0, result.stderr)
  return lastJson<Outcome>(result)
}

test('save() of a 70-node doubly linked list rejects with ERR_STORE_ENCODE naming the cycle, instead of hanging', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('doublyLinked', 70)
  t.diagnostic(`rejected in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.ok, false)
  assert.equal(out.code, 'ERR_STORE_ENCODE')
  // Depth first, as JSON.stringify walks: down every next, then the last node's prev closes the cycle.
  assert.match(out.message ?? '', /cycle at \$(\.next){69}\.prev;/)
})

test('save() of a cycle first reached 64 levels deep, with two back-references, rejects naming its path', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('deepCycle', 64)
  t.diagnostic(`rejected in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.code, 'ERR_STORE_ENCODE')
  assert.match(out.message ?? '', /cycle at \$(\.child){64}\.a;/)
})

test('save() of a 100,000-node ring rejects with ERR_STORE_ENCODE, instead of overflowing the stack', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('longCycle', 100_000)
  t.diagnostic(`rejected in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.code, 'ERR_STORE_ENCODE')
})

test('the per-entry check of a cloned value finds a cycle 64 levels deep, instead of hanging', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('deepCycle', 64, 'check')
  t.diagnostic(`rejected in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.code, 'ERR_STORE_ENCODE')
  assert.match(out.message ?? '', /cycle at \$(\.child){64}\.a;/)
})

test('the per-entry check of 40 layers of shared references (41 objects, 2^40 paths) visits each object once', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('sharedDag', 40, 'check')
  t.diagnostic(`accepted in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.ok, true, out.message)
})

test('the per-entry check of a 1,000,000-level chain neither overflows the stack nor hangs', { timeout: KILL_MS + 10_000 }, async (t) => {
  const out = await saveInChild('deepChain', 1_000_000, 'check')
  t.diagnostic(`accepted in ${out.ms.toFixed(1)} ms`)
  assert.equal(out.ok, true, out.message)
})

test('a path thousands of levels deep is shortened in the message, keeping both ends', { timeout: KILL_MS + 10_000 }, async () => {
  const out = await saveInChild('deepCycle', 3000)
  assert.equal(out.code, 'ERR_STORE_ENCODE')
  assert.match(out.message ?? '', /cycle at \$(\.child){100}…\(2801 levels\)…(\.child){99}\.a;/)
})
