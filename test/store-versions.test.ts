import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, Store, StoreVersionError } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `v${n++}.json`)
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test("a versioned store writes Home Assistant's envelope { version, minor_version, key, data }, key from its name", async () => {
  const path = file()
  const store = new Store({ path, name: 'core.settings', shutdownRegister: fakeRegister().register, version: 2, minorVersion: 3 })
  await store.save({ a: 1 })
  assert.equal(readFileSync(path, 'utf8'), '{"version":2,"minor_version":3,"key":"core.settings","data":{"a":1}}')
  assert.deepEqual(await store.load(), { a: 1 })
  await store.close()
})

test('load() migrates older data (an envelope written by 0.1.0, { version, minorVersion, data }) with migrate(oldVersion, oldMinorVersion, oldData), and the next save writes the new version', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minorVersion: 2, data: { name: 'Ada Lovelace' } }))
  const calls: unknown[][] = []
  const store = new Store<{ first: string, last: string }>({
    path,
    shutdownRegister: fakeRegister().register,
    version: 2,
    migrate: (oldVersion, oldMinorVersion, oldData) => {
      calls.push([oldVersion, oldMinorVersion, oldData])
      const [first = '', last = ''] = (oldData as { name: string }).name.split(' ')
      return { first, last }
    }
  })
  const loaded = await store.load()
  assert.deepEqual(loaded, { first: 'Ada', last: 'Lovelace' })
  assert.deepEqual(calls, [[1, 2, { name: 'Ada Lovelace' }]])
  assert.equal((readJson(path) as { version: number }).version, 1, 'load() alone does not rewrite the file')
  if (loaded !== undefined) await store.save(loaded)
  assert.deepEqual(readJson(path), { version: 2, minor_version: 1, key: path, data: { first: 'Ada', last: 'Lovelace' } })
  await store.close()
})

test('an older minor version of the same major is migrated too', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minorVersion: 1, data: [1] }))
  const store = new Store<number[]>({ path, shutdownRegister: fakeRegister().register, version: 1, minorVersion: 2, migrate: (_v, minor, data) => [...(data as number[]), minor] })
  assert.deepEqual(await store.load(), [1, 1])
  await store.close()
})

test('a newer minor version of the same major loads as is (compatible change)', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minorVersion: 9, data: { extra: true } }))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 1, migrate: () => { throw new Error('must not be called') } })
  assert.deepEqual(await store.load(), { extra: true })
  await store.close()
})

test('a file with a newer major version rejects ERR_STORE_VERSION', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 3, minorVersion: 1, data: {} }))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 2 })
  await assert.rejects(store.load(), (err: unknown) => {
    assert.ok(err instanceof StoreVersionError)
    assert.equal(err.code, 'ERR_STORE_VERSION')
    assert.match(err.message, /version 3, newer than this code's 2/)
    return true
  })
  await store.close()
})

test('older data without a migrate function rejects ERR_STORE_VERSION', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minor_version: 1, key: 'k', data: {} }))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 2 })
  await assert.rejects(store.load(), { code: 'ERR_STORE_VERSION' })
  await store.close()
})

test('a migrate that throws rejects ERR_STORE_VERSION with its error as cause', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minor_version: 1, key: 'k', data: {} }))
  const boom = new Error('cannot migrate')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 2, migrate: async () => { throw boom } })
  await assert.rejects(store.load(), (err: unknown) => (err as { code: string }).code === 'ERR_STORE_VERSION' && (err as Error).cause === boom)
  await store.close()
})

test('a Home Assistant file loads as its data, and the next save writes one envelope, not an envelope in an envelope', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minor_version: 1, key: 'core.area_registry', data: { areas: [{ id: 'kitchen' }] } }, null, 2))
  const store = new Store({ path, name: 'core.area_registry', shutdownRegister: fakeRegister().register, version: 1 })
  const loaded = await store.load()
  assert.deepEqual(loaded, { areas: [{ id: 'kitchen' }] })
  await store.save(loaded)
  assert.deepEqual(readJson(path), { version: 1, minor_version: 1, key: 'core.area_registry', data: { areas: [{ id: 'kitchen' }] } })
  await store.close()
})

test('a Home Assistant file from before minor versions ({ version, key, data }) is minor version 1', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, key: 'k', data: [1] }))
  const store = new Store<number[]>({ path, shutdownRegister: fakeRegister().register, version: 1, minorVersion: 2, migrate: (_v, minor, data) => [...(data as number[]), minor] })
  assert.deepEqual(await store.load(), [1, 1])
  await store.close()
})

test('a Home Assistant file of a newer major version rejects ERR_STORE_VERSION', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 5, minor_version: 1, key: 'k', data: {} }))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 2, migrate: () => { throw new Error('must not be called') } })
  await assert.rejects(store.load(), { code: 'ERR_STORE_VERSION', message: /version 5, newer than this code's 2/ })
  await store.close()
})

test("an app's own data shaped { version, data } is data, not an envelope, under a versioned store", async () => {
  const path = file()
  const own = { version: 7, data: ['a', 'b'] }
  writeFileSync(path, JSON.stringify(own))
  for (const version of [1, 7]) {
    const store = new Store({ path, shutdownRegister: fakeRegister().register, version })
    assert.deepEqual(await store.load(), own, `version ${version}`)
    await store.close()
  }
})

test('an unversioned store returns envelope-shaped data as it is in the file', async () => {
  const path = file()
  const envelope = { version: 1, minor_version: 1, key: 'k', data: { a: 1 } }
  writeFileSync(path, JSON.stringify(envelope))
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  assert.deepEqual(await store.load(), envelope)
  await store.close()
})

test('a plain file without an envelope keeps loading as before under a versioned store', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ legacy: true }))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, version: 1 })
  assert.deepEqual(await store.load(), { legacy: true })
  await store.close()
})

test('a versioned schema store encodes the envelope with fast-json-stringify', async () => {
  const path = file()
  const codec = codecs.schema<{ id: number }>({ type: 'object', properties: { id: { type: 'integer' } } })
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec, version: 4 })
  await store.save({ id: 7 })
  assert.equal(readFileSync(path, 'utf8'), `{"version":4,"minor_version":1,"key":${JSON.stringify(path)},"data":{"id":7}}`)
  assert.deepEqual(await store.load(), { id: 7 })
  await store.close()
})

test('version options are validated: integers >= 1, a JSON codec, migrate a function', () => {
  const register = fakeRegister().register
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, version: 0 }), /options\.version/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, version: 1, minorVersion: 1.5 }), /options\.minorVersion/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, minorVersion: 2 }), /options\.minorVersion needs options\.version/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, version: 1, migrate: 'x' as never }), /options\.migrate/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, version: 1, codec: codecs.raw() as never }), /options\.version needs a JSON codec/)
})
