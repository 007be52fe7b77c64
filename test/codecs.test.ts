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

test('Date, nested undefined and undefined in arrays are written as JSON.stringify writes them', async () => {
  const store = open()
  const value = { when: new Date(Date.UTC(2026, 0, 2)), gone: undefined, list: [undefined, 1], boxed: Object(2) as unknown }
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

const lossyCases: ReadonlyArray<readonly [name: string, value: unknown, at: RegExp, found: RegExp, fix: RegExp]> = [
  ['a Map', { m: new Map([['k', 1]]) }, /\$\.m\b/, /a Map/, /Object\.fromEntries/],
  ['a Set', { deep: [{ s: new Set([1]) }] }, /\$\.deep\[0\]\.s\b/, /a Set/, /\[\.\.\.set\]/],
  ['a typed array', { bytes: new Uint8Array([1, 2]) }, /\$\.bytes\b/, /a Uint8Array/, /Array\.from/],
  ['an ArrayBuffer', { buf: new ArrayBuffer(2) }, /\$\.buf\b/, /an ArrayBuffer/, /Array\.from/],
  ['a RegExp', { re: /x/g }, /\$\.re\b/, /a RegExp/, /source/],
  ['an Error', { err: new TypeError('boom') }, /\$\.err\b/, /TypeError/, /message/],
  ['NaN', { n: NaN }, /\$\.n\b/, /NaN/, /null/],
  ['Infinity', { list: [1, -Infinity] }, /\$\.list\[1\]/, /-Infinity/, /null/],
  ['a WeakMap', { w: new WeakMap() }, /\$\.w\b/, /a WeakMap/, /leave it out/]
]

for (const [name, value, at, found, fix] of lossyCases) {
  test(`${name} under the JSON codec is refused with a permanent ERR_STORE_ENCODE naming the path, what was found and the fix; the file is untouched`, async () => {
    const store = open<unknown>()
    await store.save({ ok: true })
    await assert.rejects(store.save(value), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'ERR_STORE_ENCODE')
      const message = (err as Error).message
      assert.match(message, at)
      assert.match(message, found)
      assert.match(message, fix)
      assert.match(message, /lossy: true/)
      return true
    })
    assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { ok: true })
    await store.close() // resolves: a refused value is not kept for a retry
    assert.equal(store.stats().failures, 1)
  })
}

test('codecs.json({ lossy: true }) writes exactly what JSON.stringify writes for Map, Set, NaN, functions, symbols and typed arrays', async () => {
  const store = open(codecs.json<unknown>({ lossy: true }))
  const value = { map: new Map([['k', 1]]), set: new Set([1]), n: NaN, f: () => 1, s: Symbol('s'), list: [() => 1], bytes: new Uint8Array([1, 2]), re: /x/ }
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

test('a BigInt is refused with ERR_STORE_ENCODE naming its path, even with { lossy: true }', async () => {
  for (const codec of [codecs.json<unknown>(), codecs.json<unknown>({ lossy: true })]) {
    const store = open(codec)
    await assert.rejects(store.save({ counts: [1, 2n] }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'ERR_STORE_ENCODE')
      assert.match((err as Error).message, /a BigInt at \$\.counts\[1\]: .*String\(n\)/)
      return true
    })
    await store.close()
  }
})

test('codecs.schema() refuses a Map unless built with { lossy: true }', async () => {
  const schema = { type: 'object', properties: { tags: { type: 'object' } } }
  const strict = open(codecs.schema<unknown>(schema))
  await assert.rejects(strict.save({ tags: new Map() }), { code: 'ERR_STORE_ENCODE', message: /a Map at \$\.tags/ })
  await strict.close()
  const lossy = open(codecs.schema<unknown>(schema, { lossy: true }))
  await lossy.save({ tags: new Map() })
  assert.equal(readFileSync(lossy.path, 'utf8'), '{"tags":{}}')
  await lossy.close()
})

test('codecs.json() and codecs.schema() reject a lossy option that is not a boolean', () => {
  assert.throws(() => codecs.json({ lossy: 'yes' as never }), /options\.lossy must be a boolean/)
  assert.throws(() => codecs.schema({}, { lossy: 1 as never }), /options\.lossy must be a boolean/)
})

test('a class instance without toJSON is written as JSON.stringify writes it (own enumerable fields)', async () => {
  class Plain { constructor (readonly a = 1, readonly b = [2]) {} get computed (): number { return 3 } }
  const store = open()
  await store.save({ p: new Plain() })
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify({ p: new Plain() }))
  await store.close()
})

test('a class instance with toJSON is written as its toJSON() returns, exactly as JSON.stringify writes it', async () => {
  class Money { constructor (readonly cents: number) {} toJSON (): string { return `$${(this.cents / 100).toFixed(2)}` } }
  const store = open<unknown>()
  const value = { prices: [1, new Money(1999)] }
  await store.save(value)
  assert.equal(readFileSync(store.path, 'utf8'), '{"prices":[1,"$19.99"]}')
  assert.equal(readFileSync(store.path, 'utf8'), JSON.stringify(value))
  await store.close()
})

test('under codecs.schema() (encoded in a worker, on a copy) a class instance with toJSON is rejected with ERR_STORE_DATA_CLONE naming where it is', async () => {
  class Money { constructor (readonly cents: number) {} toJSON (): string { return `${this.cents / 100} EUR` } }
  const store = open(codecs.schema<unknown>({ type: 'object', properties: { prices: { type: 'array' } } }))
  await store.save({ prices: [] })
  await assert.rejects(store.save({ prices: [1, new Money(250)] }), (err: unknown) => {
    assert.ok(err instanceof StoreDataCloneError)
    assert.match(err.message, /Money/)
    assert.match(err.message, /\$\.prices\[1\]/)
    assert.match(err.message, /toJSON/)
    return true
  })
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { prices: [] })
  await store.close()
})

test('a function or a symbol in the data rejects with ERR_STORE_DATA_CLONE naming where it is, unless { lossy: true }', async () => {
  const store = open<unknown>()
  await assert.rejects(store.save({ a: { f: () => 1 } }), { code: 'ERR_STORE_DATA_CLONE', message: /a function at \$\.a\.f: .*remove it/ })
  await assert.rejects(store.save({ list: [Symbol('x')] }), { code: 'ERR_STORE_DATA_CLONE', message: /a symbol at \$\.list\[0\]/ })
  await store.close()
})

test('under codecs.module() a function, a symbol or a socket rejects with ERR_STORE_DATA_CLONE: v8.serialize cannot copy it', async () => {
  const { Socket } = await import('node:net')
  const store = open(codecs.module<unknown>(new URL('./fixtures/point-codec.js', import.meta.url)))
  for (const bad of [{ f: () => 1 }, { s: Symbol('x') }, { sock: new Socket() }]) {
    await assert.rejects(store.save(bad), { code: 'ERR_STORE_DATA_CLONE', message: /cannot be copied to a worker/ })
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
