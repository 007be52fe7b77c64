import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { legacyJournalFor, openJournaled } from './journal-helpers.js'

// Journals written by version 0.1.0 (`[u32 len][u32 crc32(payload)][json]`, no magic) still load.

const dir = tempDir()
let n = 0
function where (): string {
  const folder = join(dir, `v${n++}`)
  mkdirSync(folder)
  return join(folder, 'map.json')
}

test('a 0.1.0 journal that matches its snapshot loads, and the next save writes the current format', async () => {
  const path = where()
  writeFileSync(path, '{"a":0}')
  const legacy = legacyJournalFor('{"a":0}', [[['a', 1], ['b', 2]], [['b'], ['c', 3]]])
  writeFileSync(`${path}.journal`, legacy)
  const store = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await store.load()), { a: 1, c: 3 })
  assert.deepEqual(readFileSync(`${path}.journal`), legacy, 'load() left it as it was')
  store.set('d', 4)
  await store.saveNow()
  await store.close()
  assert.notDeepEqual(readFileSync(`${path}.journal`).subarray(0, legacy.byteLength), legacy, 'rewritten in the current format')
  const reloaded = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await reloaded.load()), { a: 1, c: 3, d: 4 })
  await reloaded.close()
})

test('a 0.1.0 journal with a torn last record loads everything before it', async () => {
  const path = where()
  writeFileSync(path, '{}')
  const legacy = legacyJournalFor('{}', [[['a', 1]], [['b', 2]]])
  writeFileSync(`${path}.journal`, legacy.subarray(0, legacy.byteLength - 3))
  const store = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await store.load()), { a: 1 })
  await store.close()
})

test('a 0.1.0 journal with changes over another snapshot is refused with ERR_STORE_DECODE', async () => {
  const path = where()
  writeFileSync(path, '{"a":5}')
  writeFileSync(`${path}.journal`, legacyJournalFor('{"a":0}', [[['b', 2]]]))
  const store = openJournaled<number>(path)
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  await store.close()
})
