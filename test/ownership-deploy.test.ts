import assert from 'node:assert/strict'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { type Owner, startOwner } from './ownership-helpers.js'

// A rolling deploy: the new process starts and waits for the file while the old one still owns it
// with data it has not written yet (a delaySave, or KeyedStore changes inside their debounce);
// SIGTERM makes the old one flush through its ShutdownRegistry and exit, which releases the file;
// the new one then loads exactly what the old one held, and writes on from there.

const dir = tempDir('offload-store-deploy-')
const rounds = Number(process.env['OWNERSHIP_DEPLOY_ROUNDS'] ?? 3)

const waitingLog = (owner: Owner): Promise<Record<string, unknown>> => owner.next((message) => (message['log'] as { message?: string } | undefined)?.message?.startsWith('another process owns') === true)

test(`Store: ${rounds} rolling deploys, each old process SIGTERMed with a pending delaySave: the new one loads every acknowledged change and the pending one, never a mix`, { timeout: 20_000 + rounds * 10_000 }, async (t) => {
  const path = join(dir, 'store.json')
  let old = await startOwner('store', path)
  let expected: Record<string, unknown> = {}
  assert.deepEqual((await old.ask({ op: 'load' })).result, {})
  const gaps: number[] = []
  for (let round = 0; round < rounds; round++) {
    const acked = { ...expected, [`acked-${round}`]: old.pid }
    assert.equal((await old.ask({ op: 'save', value: acked })).ok, true)
    expected = { ...acked, [`pending-${round}`]: old.pid }
    assert.equal((await old.ask({ op: 'delaySave', value: expected, delayMs: 60_000 })).ok, true)
    const next = await startOwner('store', path)
    const loading = next.post({ op: 'load' })
    await waitingLog(next)
    old.child.kill('SIGTERM')
    const { code } = await old.exited
    const exitedAt = performance.now()
    assert.equal(code, 128 + 15, 'the old process flushed and exited on SIGTERM')
    const loaded = await loading
    gaps.push(performance.now() - exitedAt)
    assert.equal(loaded.ok, true, loaded.message)
    assert.deepEqual(loaded.result, expected, `round ${round}: the new process loaded something else than the old one held`)
    old = next
  }
  await old.ask({ op: 'exit' })
  t.diagnostic(`old exited to new loaded: ${gaps.map((gap) => gap.toFixed(0)).join(', ')} ms`)
})

test(`KeyedStore with a journal: ${rounds} rolling deploys, each old process SIGTERMed with changes inside their debounce: the new one loads all of them`, { timeout: 20_000 + rounds * 10_000 }, async () => {
  const path = join(dir, 'keyed.json')
  let old = await startOwner('keyed-journal', path)
  const expected: Record<string, unknown> = {}
  assert.deepEqual((await old.ask({ op: 'load' })).result, {})
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 10; i++) {
      await old.ask({ op: 'set', key: `acked-${round}-${i}`, value: old.pid })
      expected[`acked-${round}-${i}`] = old.pid
    }
    assert.equal((await old.ask({ op: 'saveNow' })).ok, true)
    for (let i = 0; i < 10; i++) {
      // Debounced for a minute: only the shutdown flush writes these.
      await old.ask({ op: 'set', key: `pending-${round}-${i}`, value: old.pid })
      expected[`pending-${round}-${i}`] = old.pid
    }
    const next = await startOwner('keyed-journal', path)
    const loading = next.post({ op: 'load' })
    await waitingLog(next)
    old.child.kill('SIGTERM')
    assert.equal((await old.exited).code, 128 + 15)
    const loaded = await loading
    assert.equal(loaded.ok, true, loaded.message)
    assert.deepEqual(loaded.result, expected)
    old = next
  }
  await old.ask({ op: 'exit' })
})
