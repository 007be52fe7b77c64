import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { startOwner } from './ownership-helpers.js'

const dir = tempDir('offload-store-ownership-')
let n = 0

test('two processes with a journaled KeyedStore on one file, 200 acknowledged saves each: every acknowledged key is in the file', { timeout: 60_000 }, async () => {
  const path = join(dir, `keyed${n++}.json`)
  const [a, b] = await Promise.all([startOwner('keyed-journal', path), startOwner('keyed-journal', path)])
  const [ackA, ackB] = await Promise.all([a.ask({ op: 'burst', tag: 'a', count: 200 }), b.ask({ op: 'burst', tag: 'b', count: 200 })])
  assert.equal(ackA.ok, true, ackA.message)
  assert.equal(ackB.ok, true, ackB.message)
  await Promise.all([a.ask({ op: 'exit' }), b.ask({ op: 'exit' })])
  const reader = new KeyedStore({ path, shutdownRegister: fakeRegister().register, journal: true })
  const entries = await reader.load()
  await reader.close()
  const acknowledged = [...ackA.result as string[], ...ackB.result as string[]]
  const missing = acknowledged.filter((key) => !entries.has(key))
  assert.deepEqual({ missing: missing.length, of: acknowledged.length }, { missing: 0, of: 400 })
})

test('two processes with a Store on one file, 50 acknowledged saves each: neither overwrites what the other acknowledged', { timeout: 60_000 }, async () => {
  const path = join(dir, `store${n++}.json`)
  const [a, b] = await Promise.all([startOwner('store', path), startOwner('store', path)])
  const [ackA, ackB] = await Promise.all([a.ask({ op: 'burst', tag: 'a', count: 50 }), b.ask({ op: 'burst', tag: 'b', count: 50 })])
  assert.equal(ackA.ok, true, ackA.message)
  assert.equal(ackB.ok, true, ackB.message)
  await Promise.all([a.ask({ op: 'exit' }), b.ask({ op: 'exit' })])
  const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  const acknowledged = [...ackA.result as string[], ...ackB.result as string[]]
  const missing = acknowledged.filter((key) => !(key in file))
  assert.deepEqual({ missing: missing.length, of: acknowledged.length }, { missing: 0, of: 100 })
})

test('a second process waits for the owner, logs who holds the file, and past lockTimeout rejects ERR_STORE_LOCKED naming the holder', { timeout: 30_000 }, async () => {
  const path = join(dir, `locked${n++}.json`)
  const owner = await startOwner('store', path)
  assert.equal((await owner.ask({ op: 'load' })).ok, true)
  const second = await startOwner('store', path, 300)
  const answer = await second.ask({ op: 'load' })
  assert.equal(answer.ok, false, 'the second process loaded a file another process owns')
  assert.equal(answer.code, 'ERR_STORE_LOCKED')
  assert.equal(answer.holder?.pid, owner.pid)
  assert.equal(answer.holder?.host, hostname())
  assert.ok(!Number.isNaN(Date.parse(answer.holder?.since ?? '')), `since: ${String(answer.holder?.since)}`)
  assert.match(answer.message ?? '', new RegExp(`pid ${owner.pid}.*300 ms`))
  const waiting = second.logs.find((line) => line.level === 'warn' && /another process owns/.test(line.message))
  assert.ok(waiting !== undefined, JSON.stringify(second.logs))
  assert.equal((waiting['holder'] as { pid: number }).pid, owner.pid)
  // A save rejects the same way, and nothing reached the file.
  const save = await second.ask({ op: 'save', value: { intruder: true } })
  assert.equal(save.code, 'ERR_STORE_LOCKED')
  await Promise.all([owner.ask({ op: 'exit' }), second.ask({ op: 'exit' })])
})

test('a waiting process takes over when the owner closes, and loads everything the owner acknowledged', { timeout: 30_000 }, async () => {
  const path = join(dir, `handover${n++}.json`)
  const owner = await startOwner('keyed-journal', path)
  assert.equal((await owner.ask({ op: 'load' })).ok, true)
  for (let i = 0; i < 20; i++) await owner.ask({ op: 'set', key: `k${i}`, value: i })
  assert.equal((await owner.ask({ op: 'saveNow' })).ok, true)
  const next = await startOwner('keyed-journal', path)
  const loading = next.ask({ op: 'load' })
  await next.next((message) => (message['log'] as { message?: string } | undefined)?.message?.includes('another process owns') === true)
  await owner.ask({ op: 'close' })
  const loaded = await loading
  assert.equal(loaded.ok, true, loaded.message)
  assert.deepEqual(Object.keys(loaded.result as object).length, 20)
  await Promise.all([owner.ask({ op: 'exit' }), next.ask({ op: 'exit' })])
})
