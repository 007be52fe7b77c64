import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, Store, StoreDataCloneError } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `c${n++}.json`)
const open = <T>(codec?: ReturnType<typeof codecs.json<T>>): Store<T> =>
  new Store<T>({ path: file(), shutdownRegister: fakeRegister().register, ...(codec === undefined ? {} : { codec }) })

test('codecs.json({ space }) writes exactly JSON.stringify(value, null, space)', async () => {
  const store = open(codecs.json({ space: 2 }))
  const value = { a: [1, { b: 'c' }], d: null, e: 'ü' }
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value, null, 2))
  await store.close()
})

test('Date, Map, Set, nested undefined and typed arrays are written as JSON.stringify of the original writes them', async () => {
  const store = open()
  const value = { when: new Date(Date.UTC(2026, 0, 2)), map: new Map([['k', 1]]), set: new Set([1, 2]), gone: undefined, list: [undefined, 1], bytes: new Uint8Array([1, 2]) }
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

test('a class instance without toJSON is written as JSON.stringify writes it (own enumerable fields)', async () => {
  class Plain { constructor (readonly a = 1, readonly b = [2]) {} get computed (): number { return 3 } }
  const store = open()
  await store.save({ p: new Plain() })
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify({ p: new Plain() }))
  await store.close()
})

test('a class instance with toJSON is rejected with ERR_STORE_DATA_CLONE naming where it is, and the file is untouched', async () => {
  class Money { constructor (readonly cents: number) {} toJSON (): string { return `${this.cents / 100} EUR` } }
  const store = open<unknown>()
  await store.save({ ok: true })
  await assert.rejects(store.save({ prices: [1, new Money(250)] }), (err: unknown) => {
    assert.ok(err instanceof StoreDataCloneError)
    assert.match(err.message, /Money/)
    assert.match(err.message, /\$\.prices\[1\]/)
    assert.match(err.message, /toJSON/)
    return true
  })
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { ok: true })
  await store.close()
})

test('a function, a symbol and a socket in the data reject with ERR_STORE_DATA_CLONE', async () => {
  const { Socket } = await import('node:net')
  const store = open<unknown>()
  for (const bad of [{ f: () => 1 }, { s: Symbol('x') }, { sock: new Socket() }]) {
    await assert.rejects(store.save(bad), { code: 'ERR_STORE_DATA_CLONE' })
  }
  await store.close()
})

test('a cycle under the JSON codec rejects with ERR_STORE_ENCODE naming where it is', async () => {
  const store = open<unknown>()
  const value: Record<string, unknown> = { a: { b: {} } }
  ;(value['a'] as { b: Record<string, unknown> }).b['back'] = value
  await assert.rejects(store.save(value), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_ENCODE')
    assert.match((err as Error).message, /cycle at \$\.a\.b\.back/)
    return true
  })
  await store.close()
})

test('a shared, acyclic reference is not mistaken for a cycle', async () => {
  const store = open<unknown>()
  const shared = { x: 1 }
  await store.save({ a: shared, b: shared })
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { a: { x: 1 }, b: { x: 1 } })
  await store.close()
})

test('undefined as the whole value rejects with ERR_STORE_ENCODE under the JSON codec', async () => {
  const store = open<unknown>()
  await assert.rejects(store.save(undefined), { code: 'ERR_STORE_ENCODE' })
  await store.close()
})

test('codecs.schema() writes with fast-json-stringify, and the output parses back to the value', async () => {
  const schema = { type: 'object', properties: { id: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } } }
  const store = open(codecs.schema<{ id: number, tags: string[] }>(schema))
  await store.save({ id: 7, tags: ['a', 'b'] })
  assert.equal(readFileSync(store.path, 'utf8'), '{"id":7,"tags":["a","b"]}')
  assert.deepEqual(await store.load(), { id: 7, tags: ['a', 'b'] })
  await store.close()
})

test('codecs.schema() drops properties the schema does not name (fast-json-stringify semantics)', async () => {
  const store = open(codecs.schema<Record<string, unknown>>({ type: 'object', properties: { keep: { type: 'string' } } }))
  await store.save({ keep: 'k', drop: 'd' })
  assert.equal(readFileSync(store.path, 'utf8'), '{"keep":"k"}')
  await store.close()
})

test('codecs.raw() writes a string as is', async () => {
  const store = open(codecs.raw())
  await store.save('not json at all\n')
  assert.equal(readFileSync(store.path, 'utf8'), 'not json at all\n')
  await store.close()
})

test('codecs.raw() transfers a Uint8Array that owns its buffer instead of copying it', async () => {
  const store = open(codecs.raw())
  const bytes = new Uint8Array([104, 105])
  await store.save(bytes)
  assert.equal(bytes.byteLength, 0, 'the buffer was moved to the worker (detached here)')
  assert.equal(readFileSync(store.path, 'utf8'), 'hi')
  await store.close()
})

test('codecs.raw() copies a Uint8Array view into a shared buffer rather than detaching it', async () => {
  const store = open(codecs.raw())
  const backing = new Uint8Array([0, 104, 105, 0])
  await store.save(backing.subarray(1, 3))
  assert.equal(backing.byteLength, 4)
  assert.equal(readFileSync(store.path, 'utf8'), 'hi')
  await store.close()
})

test('codecs.raw() rejects a value that is neither a string nor bytes with ERR_STORE_ENCODE', async () => {
  const store = open(codecs.raw())
  await assert.rejects(store.save(42 as never), { code: 'ERR_STORE_ENCODE' })
  await store.close()
})

test('codecs.module() needs a URL or an absolute path', () => {
  assert.throws(() => codecs.module('./relative.js'), /URL or an absolute path/)
})

test('a module codec with a missing export rejects with ERR_STORE_ENCODE naming the export', async () => {
  const store = open(codecs.module(new URL('./fixtures/point-codec.js', import.meta.url), { encode: 'nope', decode: 'decode' }))
  await assert.rejects(store.save({}), /nope/)
  await store.close()
})

test('a module codec decodes with its decode export on load()', async () => {
  const path = file()
  writeFileSync(path, '{"x":6,"y":8}')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.module(new URL('./fixtures/point-codec.js', import.meta.url)) })
  const point = await store.load() as { length: () => number }
  assert.equal(point.length(), 10)
  await store.close()
})
