import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { type Codec, codecs, KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

// The keyed writer keeps each entry's JSON between snapshots; what it writes must be what
// JSON.stringify of the entries writes, whichever entries changed since the last snapshot.

const dir = tempDir()
let n = 0

function open<V> (codec?: Codec<Record<string, V>>): KeyedStore<string, V> {
  return new KeyedStore<string, V>({ path: join(dir, `s${n++}.json`), shutdownRegister: fakeRegister().register, delayMs: 3_600_000, ...(codec === undefined ? {} : { codec }) })
}

function expected (entries: Map<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(entries))
}

test('a snapshot after sets, replacements and deletes holds exactly JSON.stringify of the entries', async () => {
  const store = open<unknown>()
  const model = new Map<string, unknown>()
  await store.load()
  const put = (key: string, value: unknown): void => { store.set(key, value); model.set(key, value) }
  for (let i = 0; i < 200; i++) put(`k${i}`, { i, tags: ['a', `t${i % 7}`], at: new Date(1_700_000_000_000 + i) })
  put('"quoted"\n', 'line\u2028break')
  await store.saveNow()
  assert.equal(readFileSync(store.path, 'utf8'), expected(model))
  for (let round = 1; round <= 3; round++) {
    for (let i = round; i < 200; i += 17) put(`k${i}`, { i, round })
    store.delete(`k${round * 5}`)
    model.delete(`k${round * 5}`)
    put(`new${round}`, [round, null, true])
    await store.saveNow()
    assert.equal(readFileSync(store.path, 'utf8'), expected(model), `after round ${round}`)
  }
  await store.close()
})

test('keys that are array indexes come first in numeric order, as in JSON.stringify of the object', async () => {
  const store = open<number>()
  const model = new Map<string, number>()
  await store.load()
  for (const key of ['b', '10', 'a', '2', '01', '4294967295']) {
    store.set(key, key.length)
    model.set(key, key.length)
  }
  await store.saveNow()
  store.set('b', 99)
  model.set('b', 99)
  await store.saveNow()
  const text = readFileSync(store.path, 'utf8')
  assert.equal(text, expected(model))
  assert.ok(text.startsWith('{"2":1,"10":2,'), text)
  await store.close()
})

test('an array-index key set after two snapshots comes first in the file, the other entries as they were', async () => {
  const store = open<unknown>()
  const model = new Map<string, unknown>()
  await store.load()
  const put = (key: string, value: unknown): void => { store.set(key, value); model.set(key, value) }
  for (let i = 0; i < 50; i++) put(`k${i}`, { i, at: new Date(1_700_000_000_000 + i) })
  await store.saveNow()
  put('k3', { i: 3, round: 2 })
  await store.saveNow()
  put('7', 'seven')
  put('k4', null)
  await store.saveNow()
  const text = readFileSync(store.path, 'utf8')
  assert.equal(text, expected(model))
  assert.ok(text.startsWith('{"7":"seven","k0":'), text)
  await store.close()
})

test('a compressed JSON snapshot inflates to JSON.stringify of the entries after a change', async () => {
  const store = open<number>(codecs.gzip(codecs.json()))
  const model = new Map<string, number>()
  await store.load()
  for (let i = 0; i < 50; i++) {
    store.set(`e${i}`, i)
    model.set(`e${i}`, i)
  }
  await store.saveNow()
  store.set('e7', 700)
  model.set('e7', 700)
  await store.saveNow()
  assert.equal(gunzipSync(readFileSync(store.path)).toString('utf8'), expected(model))
  await store.close()
})
