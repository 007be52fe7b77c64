import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, ShutdownRegistry, Store, StoreDecodeError, StoreReadError } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir()
const shutdown = new ShutdownRegistry()
let n = 0
const file = (name = `f${n++}.json`): string => join(dir, name)

test('load() resolves undefined when the file does not exist', async () => {
  const store = new Store({ path: file(), shutdownRegister: shutdown.register })
  assert.equal(await store.load(), undefined)
  await store.close()
})

test('load() returns what save() wrote', async () => {
  const store = new Store<{ a: number[] }>({ path: file(), shutdownRegister: shutdown.register })
  await store.save({ a: [1, 2, 3] })
  assert.deepEqual(await store.load(), { a: [1, 2, 3] })
  await store.close()
})

test('load() rejects ERR_STORE_DECODE with the decoder error as cause on invalid JSON', async () => {
  const path = file()
  writeFileSync(path, '{"a": 1,')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, name: 'broken' })
  await assert.rejects(store.load(), (err: unknown) => {
    assert.ok(err instanceof StoreDecodeError)
    assert.equal(err.code, 'ERR_STORE_DECODE')
    assert.ok(err.cause instanceof SyntaxError)
    assert.match(err.message, /broken/)
    assert.ok(err.message.includes(path))
    return true
  })
  await store.close()
})

test('load() of an empty file rejects ERR_STORE_DECODE rather than returning an empty state', async () => {
  const path = file()
  writeFileSync(path, '')
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  await store.close()
})

test('load() of a file that is not valid UTF-8 rejects ERR_STORE_DECODE', async () => {
  const path = file()
  writeFileSync(path, Buffer.from([0x22, 0xff, 0xfe, 0x22]))
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  await store.close()
})

test('load() rejects ERR_STORE_READ, with the fs error as cause, when the path is a directory', async () => {
  const path = file()
  mkdirSync(path)
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await assert.rejects(store.load(), (err: unknown) => {
    assert.ok(err instanceof StoreReadError)
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EISDIR')
    assert.ok(err.message.includes(path))
    return true
  })
  await store.close()
})

test('codecs.raw() loads a Uint8Array of the file bytes', async () => {
  const path = file('raw.bin')
  writeFileSync(path, Buffer.from([1, 2, 3, 250]))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.raw() })
  const loaded = await store.load()
  assert.ok(loaded instanceof Uint8Array)
  assert.deepEqual([...loaded], [1, 2, 3, 250])
  await store.close()
})

test('a codecs.module decoder runs on the main thread and returns class instances with their prototypes', async () => {
  const { Point } = await import('./fixtures/point-codec.js')
  const store = new Store({
    path: file(),
    shutdownRegister: fakeRegister().register,
    codec: codecs.module(new URL('./fixtures/point-codec.js', import.meta.url))
  })
  await store.save(new Point(3, 4))
  const loaded = await store.load()
  assert.ok(loaded instanceof Point)
  assert.equal(loaded.length(), 5)
  await store.close()
})
