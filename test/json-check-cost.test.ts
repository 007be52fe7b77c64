import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { type Codec, codecs, Store } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

// What a JSON save costs the main thread beyond JSON.stringify: how often the value is read, and
// that the quick first pass over plain data hands anything else to the walk that names it.

const dir = tempDir()
let n = 0
const open = <T>(codec: Codec<T>): Store<T> =>
  new Store<T>({ path: join(dir, `j${n++}.json`), codec, shutdownRegister: fakeRegister().register })

/** A value whose one getter counts how often the save read it. */
function counted (): { value: { readonly n: number }, reads: () => number } {
  let reads = 0
  const value = Object.defineProperty({}, 'n', { enumerable: true, get: () => { reads++; return 1 } }) as { readonly n: number }
  return { value, reads: () => reads }
}

test('codecs.json({ lossy: true }) reads the value once per save: the text JSON.stringify wrote is the whole check', async () => {
  const store = open(codecs.json<{ readonly n: number }>({ lossy: true }))
  const { value, reads } = counted()
  await store.save(value)
  assert.equal(reads(), 1, 'a lossy JSON save reads the value only to stringify it')
  assert.equal(readFileSync(store.path, 'utf8'), '{"n":1}')
  await store.close()
})

test('codecs.json() reads the value twice per save: once to stringify it, once to check it', async () => {
  const store = open(codecs.json<{ readonly n: number }>())
  const { value, reads } = counted()
  await store.save(value)
  assert.equal(reads(), 2)
  await store.close()
})

/** 20,000 plain records, with `odd` put into the last one's attributes. */
function largeWith (odd: unknown): { records: Array<Record<string, unknown>> } {
  const records = Array.from({ length: 20_000 }, (_, i) => ({ id: `r${i}`, on: i % 2 === 0, value: i / 3, tags: ['a', 'b'], attributes: { unit: 'W', max: i } as Record<string, unknown> }))
  const last = records[records.length - 1]
  if (last !== undefined) last.attributes['odd'] = odd
  return { records }
}

for (const [what, odd, code, message] of [
  ['a Map', new Map([['k', 1]]), 'ERR_STORE_ENCODE', /a Map at \$\.records\[19999\]\.attributes\.odd/],
  ['NaN', NaN, 'ERR_STORE_ENCODE', /NaN at \$\.records\[19999\]\.attributes\.odd/],
  ['a function', () => 1, 'ERR_STORE_DATA_CLONE', /a function at \$\.records\[19999\]\.attributes\.odd/],
  ['a Uint8Array', new Uint8Array([1]), 'ERR_STORE_ENCODE', /a Uint8Array at \$\.records\[19999\]\.attributes\.odd/]
] as const) {
  test(`codecs.json() refuses ${what} in the last of 20,000 plain records, naming its path`, async () => {
    const store = open(codecs.json<unknown>())
    await assert.rejects(store.save(largeWith(odd)), (err: unknown) => {
      assert.equal((err as { code?: string }).code, code)
      assert.match((err as Error).message, message)
      return true
    })
    await store.close()
  })
}

test('codecs.json() writes a class instance, a Date and a boxed number deep in a large state exactly as JSON.stringify does', async () => {
  class Point { constructor (readonly x = 1, readonly y = 2) {} }
  const value = largeWith([new Point(), new Date(Date.UTC(2026, 0, 1)), Object(3) as unknown])
  const store = open(codecs.json<unknown>())
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

test('codecs.schema() refuses a toJSON() class deep in a large state (a clone cannot call it) and writes a Date there', async () => {
  class Money { constructor (readonly cents: number) {} toJSON (): string { return `$${this.cents / 100}` } }
  const store = open(codecs.schema<unknown>({ type: 'object', additionalProperties: true }))
  await assert.rejects(store.save(largeWith(new Money(5))), { code: 'ERR_STORE_DATA_CLONE', message: /an instance of Money with a toJSON\(\) method at \$\.records\[19999\]\.attributes\.odd/ })
  const dated = largeWith(new Date(Date.UTC(2026, 0, 1)))
  await store.save(dated)
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), JSON.parse(JSON.stringify(dated)))
  await store.close()
})

test('codecs.json() writes plain data byte for byte as JSON.stringify does: undefined, -0, holes, integer-like keys, null prototypes, space', async () => {
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { z: 1, a: [2] })
  const holes = [1, , 3] // eslint-disable-line no-sparse-arrays
  const value = { b: 1, 10: 'ten', 2: 'two', gone: undefined, list: [undefined, -0, 1e21, 'é\u2028\ud800'], holes, bare, nested: { deep: [[[{}]]] } }
  for (const space of [undefined, 2, '\t']) {
    const store = open(codecs.json<unknown>(space === undefined ? {} : { space }))
    await store.save(value)
    assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value, null, space))
    await store.close()
  }
})

test('codecs.json() honours a Date.prototype.toJSON patched on this thread, as JSON.stringify does', async (t) => {
  const original = Object.getOwnPropertyDescriptor(Date.prototype, 'toJSON')
  /* eslint-disable no-extend-native -- the patch is what this test is about; it is undone after */
  t.after(() => { if (original !== undefined) Object.defineProperty(Date.prototype, 'toJSON', original) })
  Object.defineProperty(Date.prototype, 'toJSON', { configurable: true, writable: true, value: function (this: Date) { return `local:${this.getTime()}` } })
  /* eslint-enable no-extend-native */
  const store = open(codecs.json<unknown>())
  await store.save({ at: new Date(0) })
  assert.equal(readFileSync(store.path, 'utf8'), '{"at":"local:0"}')
  await store.close()
})

test('codecs.json() writes a Proxy of plain data as JSON.stringify does, though it cannot be cloned', async () => {
  const value = { p: new Proxy({ a: 1 }, {}) }
  const store = open(codecs.json<unknown>())
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), '{"p":{"a":1}}')
  await store.close()
})

test('codecs.json() saves plain data as it was when save() was called, not as it is when the worker writes', async () => {
  const store = open(codecs.json<{ n: number[] }>())
  const value = { n: [1] }
  const saving = store.save(value)
  value.n.push(2)
  await saving
  assert.equal(readFileSync(store.path, 'utf8'), '{"n":[1]}')
  await store.close()
})

test('codecs.json() writes a Date subclass with its own toISOString() as JSON.stringify does', async () => {
  class Day extends Date { override toISOString (): string { return 'day' } }
  const store = open(codecs.json<unknown>())
  await store.save({ day: new Day(0) })
  assert.equal(readFileSync(store.path, 'utf8'), '{"day":"day"}')
  await store.close()
})

test('codecs.json() honours an Array.prototype.toJSON put on this thread, as JSON.stringify does', async (t) => {
  /* eslint-disable no-extend-native -- the patch is what this test is about; it is undone after */
  t.after(() => { delete (Array.prototype as { toJSON?: unknown }).toJSON })
  Object.defineProperty(Array.prototype, 'toJSON', { configurable: true, writable: true, value: function (this: unknown[]) { return this.length } })
  /* eslint-enable no-extend-native */
  const store = open(codecs.json<unknown>())
  await store.save({ list: [1, 2, 3] })
  assert.equal(readFileSync(store.path, 'utf8'), '{"list":3}')
  await store.close()
})

test('codecs.json({ lossy: true }) leaves out functions and writes a Map\'s own fields, as JSON.stringify does', async () => {
  const store = open(codecs.json<unknown>({ lossy: true }))
  await store.save({ a: 1, f: () => 1, list: [() => 2], map: Object.assign(new Map([['k', 1]]), { label: 'kept' }) })
  assert.equal(readFileSync(store.path, 'utf8'), '{"a":1,"list":[null],"map":{"label":"kept"}}')
  await store.close()
})
