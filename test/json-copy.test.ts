import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { JSON_COPY_MAX_BYTES, JSON_COPY_MIN_BYTES } from '../src/handoff.js'
import { type Codec, codecs, Store } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

// Which thread writes a codecs.json() value's text: the worker, from a v8.serialize copy, when the
// last save was of a size where the copy pays and JSON.stringify of the copy gives the same text;
// the main thread otherwise. Either way the file holds what JSON.stringify gives here.

const dir = tempDir()
let n = 0
const open = <T>(codec: Codec<T>): Store<T> =>
  new Store<T>({ path: join(dir, `c${n++}.json`), codec, shutdownRegister: fakeRegister().register })

/** Counts this thread's JSON.stringify calls on any of `values` until the test ends. */
function stringifyCalls (t: TestContext, ...values: unknown[]): () => number {
  const original = JSON.stringify
  let calls = 0
  JSON.stringify = function (this: JSON, ...args: Parameters<typeof JSON.stringify>) {
    if (values.includes(args[0])) calls++
    return original.apply(this, args)
  } as typeof JSON.stringify
  t.after(() => { JSON.stringify = original })
  return () => calls
}

/** Saves each value in turn, returning how many of the counted JSON.stringify calls each save made. */
async function callsPerSave<T> (store: Store<T>, calls: () => number, values: readonly T[]): Promise<number[]> {
  const perSave: number[] = []
  for (const value of values) {
    const before = calls()
    await store.save(value)
    perSave.push(calls() - before)
  }
  return perSave
}

/** Plain data of about `bytes` bytes of JSON, with a Date and nested objects. */
function plain (bytes: number, tag = 'p'): { tag: string, at: Date, rows: Array<{ id: number, text: string }> } {
  return { tag, at: new Date(0), rows: Array.from({ length: Math.ceil(bytes / 100) }, (_, id) => ({ id, text: 'x'.repeat(80) })) }
}

class Money {
  constructor (readonly cents: number) {}
  toJSON (): string { return `$${this.cents / 100}` }
}

test('codecs.json() stringifies a first save on the main thread, then copies plain data of that size to the worker, which writes its text', async (t) => {
  const value = plain(2 * JSON_COPY_MIN_BYTES)
  const calls = stringifyCalls(t, value)
  const store = open(codecs.json<unknown>())
  assert.deepEqual(await callsPerSave(store, calls, [value, value, value]), [1, 0, 0])
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

test('codecs.json() stringifies small plain data on the main thread: a copy would cost its write a longer wait for nothing', async (t) => {
  const value = { a: [1, 'two', { three: 3 }], at: new Date(0) }
  const calls = stringifyCalls(t, value)
  const store = open(codecs.json<unknown>())
  assert.deepEqual(await callsPerSave(store, calls, [value, value, value]), [1, 1, 1])
  await store.close()
})

test('codecs.json() stringifies on the main thread a value whose last save was over the copy limit, and copies again once it is smaller', async (t) => {
  const large = plain(JSON_COPY_MAX_BYTES + 10_000, 'large')
  const mid = plain(2 * JSON_COPY_MIN_BYTES, 'mid')
  const calls = stringifyCalls(t, large, mid)
  const store = open(codecs.json<unknown>())
  // The first mid-sized save follows a large one, so it is stringified; the next is copied.
  assert.deepEqual(await callsPerSave(store, calls, [large, large, mid, mid]), [1, 1, 1, 0])
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(mid))
  await store.close()
})

test('codecs.json() stringifies on the main thread a value with a class toJSON(), and writes what toJSON() returns', async (t) => {
  const value = { ...plain(2 * JSON_COPY_MIN_BYTES), price: new Money(250) }
  const calls = stringifyCalls(t, value)
  const store = open(codecs.json<unknown>())
  assert.deepEqual(await callsPerSave(store, calls, [value, value]), [1, 1])
  assert.match(readFileSync(store.path, 'utf8'), /"price":"\$2\.5"\}$/)
  await store.close()
})

test('codecs.json() does not copy again on the next saves a value it had to stringify on the main thread', async () => {
  let reads = 0
  const value = Object.defineProperty({ price: new Money(1), ...plain(2 * JSON_COPY_MIN_BYTES) }, 'n', { enumerable: true, get: () => { reads++; return 1 } })
  const store = open(codecs.json<unknown>())
  const perSave: number[] = []
  for (let i = 0; i < 4; i++) {
    reads = 0
    await store.save(value)
    perSave.push(reads)
  }
  // Stringified and checked here (two reads); then copied once (a third read) and refused by the
  // prototype walk, which stops at the toJSON() before it reaches the getter; then no copy.
  assert.deepEqual(perSave, [2, 3, 2, 2])
  await store.close()
})

test('codecs.json() goes back to copying once the value that needed the main thread is plain data again', async (t) => {
  const value = plain(2 * JSON_COPY_MIN_BYTES)
  const calls = stringifyCalls(t, value)
  const store = open(codecs.json<unknown>())
  await store.save({ ...value, price: new Money(1) })
  await store.save({ ...value, price: new Money(1) })
  const perSave = await callsPerSave(store, calls, Array.from({ length: 40 }, () => value))
  assert.equal(perSave[0], 1, 'right after a refused copy, the main thread stringifies')
  assert.equal(perSave[perSave.length - 1], 0, 'a while later, the copy is tried again and taken')
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

// Each of these values is saved twice, so the second save takes the copy if it may: what is
// written must still be what JSON.stringify gives on this thread.
async function savedTwice (codec: Codec<unknown>, value: unknown): Promise<string> {
  const store = open(codec)
  await store.save(value)
  await store.save(value)
  await store.close()
  return readFileSync(store.path, 'utf8')
}

test('codecs.json() writes a Date subclass with its own toISOString() as JSON.stringify does', async () => {
  class Day extends Date { override toISOString (): string { return 'day' } }
  const value = { ...plain(2 * JSON_COPY_MIN_BYTES), day: new Day(0) }
  assert.equal(await savedTwice(codecs.json(), value), JSON.stringify(value))
  assert.match(JSON.stringify(value), /"day":"day"\}$/)
})

test('codecs.json() honours an Array.prototype.toJSON put on this thread, as JSON.stringify does', async (t) => {
  const value = plain(2 * JSON_COPY_MIN_BYTES)
  const store = open(codecs.json<unknown>())
  await store.save(value) // a mid-sized save: the next may be copied
  /* eslint-disable no-extend-native -- the patch is what this test is about; it is undone after */
  t.after(() => { delete (Array.prototype as { toJSON?: unknown }).toJSON })
  Object.defineProperty(Array.prototype, 'toJSON', { configurable: true, writable: true, value: function (this: unknown[]) { return this.length } })
  /* eslint-enable no-extend-native */
  await store.save(value)
  await store.close()
  assert.equal(readFileSync(store.path, 'utf8'), `{"tag":"p","at":"1970-01-01T00:00:00.000Z","rows":${value.rows.length}}`)
})

test('codecs.json() honours a Date.prototype.toJSON replaced on this thread, as JSON.stringify does', async (t) => {
  const original = Object.getOwnPropertyDescriptor(Date.prototype, 'toJSON')
  /* eslint-disable no-extend-native -- the patch is what this test is about; it is undone after */
  t.after(() => { if (original !== undefined) Object.defineProperty(Date.prototype, 'toJSON', original) })
  Object.defineProperty(Date.prototype, 'toJSON', { configurable: true, writable: true, value: function (this: Date) { return `local:${this.getTime()}` } })
  /* eslint-enable no-extend-native */
  const value = plain(2 * JSON_COPY_MIN_BYTES)
  assert.match(await savedTwice(codecs.json(), value), /^\{"tag":"p","at":"local:0",/)
})

test('codecs.json({ lossy: true }) leaves out a function as JSON.stringify does, though a copy cannot hold one', async () => {
  const value = { ...plain(2 * JSON_COPY_MIN_BYTES), f: () => 1, list: [() => 2] }
  assert.equal(await savedTwice(codecs.json({ lossy: true }), value), JSON.stringify(value))
  assert.match(JSON.stringify(value), /"list":\[null\]\}$/)
})

test('codecs.json({ lossy: true }) writes a Map\'s own fields as JSON.stringify does, though a copy drops them', async () => {
  const value = { ...plain(2 * JSON_COPY_MIN_BYTES), map: Object.assign(new Map([['k', 1]]), { label: 'kept' }) }
  assert.equal(await savedTwice(codecs.json({ lossy: true }), value), JSON.stringify(value))
  assert.match(JSON.stringify(value), /"map":\{"label":"kept"\}\}$/)
})

test('codecs.json() writes mid-sized plain data byte for byte as JSON.stringify does: undefined, -0, holes, integer-like keys, null prototypes, space', async () => {
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { z: 1, a: [2] })
  const holes = [1, , 3] // eslint-disable-line no-sparse-arrays
  const value = { b: 1, 10: 'ten', 2: 'two', gone: undefined, list: [undefined, -0, 1e21, 'é\u2028\ud800'], holes, bare, rows: plain(2 * JSON_COPY_MIN_BYTES).rows }
  for (const space of [undefined, 2, '\t']) {
    assert.equal(await savedTwice(codecs.json(space === undefined ? { lossy: true } : { space, lossy: true }), value), JSON.stringify(value, null, space))
  }
})

test('codecs.json() refuses NaN in a copied value with the error and path the main thread gives, and writes nothing', async () => {
  const value = plain(2 * JSON_COPY_MIN_BYTES)
  const store = open(codecs.json<unknown>())
  await store.save(value)
  const before = readFileSync(store.path, 'utf8')
  const bad = { ...value, rows: [...value.rows.slice(0, -1), { id: 1, text: 'x', value: NaN }] }
  for (let i = 0; i < 2; i++) {
    await assert.rejects(store.save(bad), { code: 'ERR_STORE_ENCODE', message: new RegExp(`NaN at \\$\\.rows\\[${value.rows.length - 1}\\]\\.value`) })
  }
  assert.equal(readFileSync(store.path, 'utf8'), before)
  await store.close()
})
