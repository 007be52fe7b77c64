import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { codecs, postgres, ShutdownRegistry, Store, StoreDataCloneError, StoreEncodeError, WriterPool } from '../src/index.js'
import { fakeRegister, keepAlive, recordingLogger, tempDir } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'

// Under codecs.schema() the JSON check judges the v8.serialize copy that the worker encodes: the
// same refusals, at the same paths, with the same errors as a check of the value itself, and
// nothing is written when the copy is refused.

const server: TestServer = await startServer()
const dir = tempDir()
let n = 0
const schema = codecs.schema<unknown>({ type: 'object', additionalProperties: true })
const open = (options: { lossy?: boolean, version?: number } = {}): Store<unknown> => new Store<unknown>({
  path: join(dir, `s${n++}.json`),
  shutdownRegister: fakeRegister().register,
  codec: options.lossy === true ? codecs.schema<unknown>({ type: 'object', additionalProperties: true }, { lossy: true }) : schema,
  ...(options.version === undefined ? {} : { version: options.version })
})

class Custom extends Error {}
class Money { constructor (readonly cents: number) {} toJSON (): string { return `${this.cents / 100} EUR` } }

const refused: ReadonlyArray<readonly [what: string, value: unknown, kind: typeof StoreEncodeError | typeof StoreDataCloneError, message: string]> = [
  ['a Map at $.a.b', { a: { b: new Map([['k', 1]]) } }, StoreEncodeError, 'a Map at $.a.b: JSON would write {}, so the file would not hold your data; convert it with Object.fromEntries(map) (or [...map] for keys that are not strings), or accept JSON\'s rules with the codec\'s { lossy: true } option'],
  ['a Set in an array', { list: [1, new Set([2])] }, StoreEncodeError, 'a Set at $.list[1]: JSON would write {}'],
  ['NaN', { n: NaN }, StoreEncodeError, 'NaN at $.n: JSON would write null'],
  ['-Infinity', { deep: [{ x: -Infinity }] }, StoreEncodeError, '-Infinity at $.deep[0].x: JSON would write null'],
  ['a BigInt', { big: 1n }, StoreEncodeError, 'a BigInt at $.big: JSON.stringify cannot encode it'],
  ['a Uint8Array', { bytes: new Uint8Array([1]) }, StoreEncodeError, 'a Uint8Array at $.bytes: JSON would write an object of indexes'],
  ['a RegExp', { re: /x/g }, StoreEncodeError, 'a RegExp at $.re: JSON would write {}'],
  ['an Error subclass, named by its class', { e: new Custom('boom') }, StoreEncodeError, 'an Custom at $.e: JSON would write {} (message and stack are not enumerable)'],
  ['a cycle', (() => { const v: Record<string, unknown> = { a: { list: [] as unknown[] } }; (v['a'] as { list: unknown[] }).list.push(v); return v })(), StoreEncodeError, 'the value has a cycle at $.a.list[0]; JSON cannot encode it'],
  ['a class instance with toJSON()', { prices: [1, new Money(250)] }, StoreDataCloneError, 'an instance of Money with a toJSON() method at $.prices[1]: a worker receives a structured clone']
]

for (const [what, value, kind, message] of refused) {
  test(`under codecs.schema() ${what} is refused with ${kind.name}, the same message as ever, naming the store and path; the file is untouched and nothing is kept for a retry`, async () => {
    const store = open()
    await store.save({ ok: true })
    await assert.rejects(store.save(value), (err: unknown) => {
      assert.ok(err instanceof kind, `${String(err)}`)
      assert.equal(err.code, kind === StoreEncodeError ? 'ERR_STORE_ENCODE' : 'ERR_STORE_DATA_CLONE')
      assert.equal(err.store, store.name)
      assert.equal(err.path, store.path)
      assert.ok(err.message.includes(message), err.message)
      return true
    })
    assert.equal(readFileSync(store.path, 'utf8'), '{"ok":true}')
    await store.close() // resolves: a refused value is not kept for a retry
    assert.equal(store.stats().failures, 1)
  })
}

test('under codecs.schema() a class instance is checked as its own fields: a Map in one is refused at its path, and a toJSON() class inside one is refused too', async () => {
  class Holder { constructor (readonly inner: unknown) {} }
  const store = open()
  await store.save({ h: new Holder({ list: [1, 2] }) })
  assert.equal(readFileSync(store.path, 'utf8'), '{"h":{"inner":{"list":[1,2]}}}')
  await assert.rejects(store.save({ h: new Holder({ m: new Map() }) }), { code: 'ERR_STORE_ENCODE', message: /a Map at \$\.h\.inner\.m:/ })
  await assert.rejects(store.save({ h: new Holder([new Money(1)]) }), { code: 'ERR_STORE_DATA_CLONE', message: /an instance of Money with a toJSON\(\) method at \$\.h\.inner\[0\]:/ })
  assert.equal(readFileSync(store.path, 'utf8'), '{"h":{"inner":{"list":[1,2]}}}')
  await store.close()
})

test('under codecs.schema() a versioned store names paths inside the saved value, not inside its envelope', async () => {
  const store = open({ version: 1 })
  await assert.rejects(store.save({ a: { b: new Map() } }), { code: 'ERR_STORE_ENCODE', message: /a Map at \$\.a\.b:/ })
  await store.close()
})

test('under codecs.schema({ lossy: true }) a Map and NaN are written as JSON writes them, and a cycle is still refused', async () => {
  const store = open({ lossy: true })
  await store.save({ m: new Map([['k', 1]]), n: NaN })
  assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { m: {}, n: null })
  const cyclic: Record<string, unknown> = {}
  cyclic['self'] = cyclic
  await assert.rejects(store.save(cyclic), { code: 'ERR_STORE_ENCODE', message: /a cycle at \$\.self/ })
  await store.close()
})

test('under codecs.schema() a delaySave() of a refused value logs the error once and leaves the file untouched', async () => {
  const logger = recordingLogger()
  const store = new Store<unknown>({ path: join(dir, `s${n++}.json`), shutdownRegister: fakeRegister().register, codec: schema, logger })
  await store.save({ ok: true })
  const release = keepAlive() // the delayed write's timer does not hold the loop open
  store.delaySave(() => ({ a: new Set([1]) }), 0)
  const line = await logger.next('error')
  release()
  assert.match(String((line.fields['err'] as Error | undefined)?.message), /a Set at \$\.a:/)
  assert.equal(readFileSync(store.path, 'utf8'), '{"ok":true}')
  await store.close() // resolves: the refused value is not kept for a retry
  assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1)
})

/** An object whose property `key` gives `first` to the first read (the copy's) and `later` to every read after it. */
function changing (key: string, first: unknown, later: unknown): Record<string, unknown> {
  let reads = 0
  return Object.defineProperty({}, key, { enumerable: true, get: () => reads++ === 0 ? first : later }) as Record<string, unknown>
}

test('under codecs.schema() the check judges the copy that is written: a Map the copy took is refused, though later reads give a plain object', async () => {
  const store = open()
  await store.save({ ok: true })
  await assert.rejects(store.save(changing('m', new Map([['k', 1]]), {})), { code: 'ERR_STORE_ENCODE', message: /a Map at \$\.m:/ })
  assert.equal(readFileSync(store.path, 'utf8'), '{"ok":true}')
  await store.close()
})

test('under codecs.schema() the check judges the copy that is written, not later reads of the value: a number the copy took is written, though later reads give NaN', async () => {
  const store = open()
  await store.save(changing('n', 1, NaN))
  assert.equal(readFileSync(store.path, 'utf8'), '{"n":1}')
  await store.close()
})

test('under codecs.schema() a Map is refused with ERR_STORE_ENCODE naming $.a.b on the PostgreSQL target, and the row keeps the last value', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  after(async () => { await pool.close() })
  const name = `schema-check-${n++}`
  const store = new Store<unknown>({
    path: join('/nonexistent', `${name}.json`),
    name,
    codec: schema,
    pool,
    shutdownRegister: new ShutdownRegistry().register,
    logger: { error: () => {}, warn: () => {}, debug: () => {} },
    target: postgres({ connectionString: server.connectionString, leaseMs: 10_000, lockTimeout: 0 })
  })
  await store.save({ ok: true })
  await assert.rejects(store.save({ a: { b: new Map() } }), (err: unknown) =>
    err instanceof StoreEncodeError && err.code === 'ERR_STORE_ENCODE' && err.message.includes('a Map at $.a.b: JSON would write {}') && err.store === name)
  assert.deepEqual(await server.rowOf(name), { ok: true })
  await store.close()
})
