import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { cannotMount, mountTmpfs } from './rel-helpers.js'

// Journal appends that fail on a real file system.

const dir = tempDir('offload-store-journal-faults-')

test('after an append fails with ENOSPC, the next write is a snapshot, and a reload gives the acknowledged state', { skip: cannotMount }, async () => {
  const where = mountTmpfs(dir, 'enospc', '1m')
  const path = join(where, 'map.json')
  const open = (): KeyedStore<string, string> => new KeyedStore({ path, shutdownRegister: fakeRegister().register, journal: { compactRatio: 1_000_000 }, delayMs: 60_000, retry: false })
  const store = open()
  await store.load()
  store.set('a', 'first')
  await store.saveNow() // the first snapshot
  store.set('b', 'appended')
  await store.saveNow()
  assert.equal(readFileSync(path, 'utf8'), '{"a":"first"}', 'b went to the journal')
  store.set('big', 'x'.repeat(2 * 1024 * 1024))
  await assert.rejects(store.saveNow(), (err: Error & { code?: string, cause?: { code?: string } }) => {
    assert.equal(err.code, 'ERR_STORE_WRITE')
    assert.equal(err.cause?.code, 'ENOSPC')
    return true
  })
  store.set('big', 'small now')
  await store.saveNow()
  assert.equal(readFileSync(path, 'utf8'), '{"a":"first","b":"appended","big":"small now"}', 'the write after the failed append was a snapshot')
  assert.ok(statSync(`${path}.journal`).size < 200, 'the journal started over')
  store.set('c', 'appended again')
  await store.saveNow()
  await store.close()
  const reloaded = open()
  assert.deepEqual(Object.fromEntries(await reloaded.load()), { a: 'first', b: 'appended', big: 'small now', c: 'appended again' })
  await reloaded.close()
})
