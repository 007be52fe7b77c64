import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, ShutdownRegistry, Store, WriterPool } from '../src/index.js'
import { countMessages, keepAlive, nextMessage, recordingLogger, tempDir } from './helpers.js'

const dir = tempDir()
const shutdown = new ShutdownRegistry()
let n = 0
const file = (): string => join(dir, `s${n++}.json`)
const slow = codecs.module<{ burnMs: number, v?: number }>(new URL('./fixtures/slow-codec.js', import.meta.url))
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test('writes are single-flight: never two writes of one file at once', async (t) => {
  const path = file()
  let active = 0
  let maxActive = 0
  const starts = countMessages('offload-store:write:start', path)
  const onStart = (m: unknown): void => { if ((m as { path: string }).path === path) maxActive = Math.max(maxActive, ++active) }
  const onDone = (m: unknown): void => { if ((m as { path: string }).path === path) active-- }
  const dc = await import('node:diagnostics_channel')
  dc.subscribe('offload-store:write:start', onStart)
  dc.subscribe('offload-store:write:end', onDone)
  dc.subscribe('offload-store:write:error', onDone)
  t.after(() => { starts.stop(); dc.unsubscribe('offload-store:write:start', onStart); dc.unsubscribe('offload-store:write:end', onDone); dc.unsubscribe('offload-store:write:error', onDone) })
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const saves = []
  for (let v = 0; v < 20; v++) {
    saves.push(store.save({ burnMs: 5, v }))
    await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(saves)
  assert.equal(maxActive, 1)
  assert.ok(starts.count >= 2)
  await store.close()
})

test('saves requested during a write coalesce into one write of the latest data', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const first = store.save({ burnMs: 150, v: 1 })
  const during = [store.save({ burnMs: 0, v: 2 }), store.save({ burnMs: 0, v: 3 }), store.save({ burnMs: 0, v: 4 })]
  await Promise.all([first, ...during])
  assert.equal(starts.count, 2, 'one write for v1, one for v2..v4 together')
  assert.deepEqual(readJson(path), { burnMs: 0, v: 4 })
  await store.close()
})

test('save(v) resolves once a write holding v or a later value is durable', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const first = store.save({ burnMs: 100, v: 1 })
  const second = store.save({ burnMs: 0, v: 2 })
  const third = store.save({ burnMs: 0, v: 3 })
  await second
  assert.deepEqual(readJson(path), { burnMs: 0, v: 3 }, 'v2 was superseded by v3 before it was written')
  await Promise.all([first, third])
  await store.close()
})

test('a save requested while a write is in flight runs after it, with the latest data', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const first = store.save({ burnMs: 80, v: 1 })
  const ended = nextMessage<{ path: string }>('offload-store:write:end', (m) => m.path === path)
  const second = store.save({ burnMs: 0, v: 2 })
  await ended
  assert.deepEqual(readJson(path), { burnMs: 80, v: 1 }, 'the first write completes first')
  await Promise.all([first, second])
  assert.deepEqual(readJson(path), { burnMs: 0, v: 2 })
  await store.close()
})

test('delaySave() calls dataFn at write time, so many mutations make one write of the latest state', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  t.after(keepAlive()) // the debounce timer is unref'd: only a live loop lets it fire
  const store = new Store<{ count: number }>({ path, shutdownRegister: shutdown.register })
  const state = { count: 0 }
  let calls = 0
  const written = nextMessage<{ path: string }>('offload-store:write:end', (m) => m.path === path)
  for (let i = 0; i < 100; i++) {
    state.count++
    store.delaySave(() => { calls++; return state }, 30)
  }
  await written
  assert.equal(calls, 1)
  assert.equal(starts.count, 1)
  assert.deepEqual(readJson(path), { count: 100 })
  await store.close()
})

test('a delaySave() made during a write still waits for its own deadline', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  let calls = 0
  const inFlight = store.save({ burnMs: 60, v: 1 })
  store.delaySave(() => { calls++; return { burnMs: 0, v: 2 } }, 60_000)
  await inFlight
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(calls, 0, 'dataFn not called when the in-flight write ended')
  assert.equal(starts.count, 1)
  await store.saveNow()
  assert.equal(calls, 1)
  assert.deepEqual(readJson(path), { burnMs: 0, v: 2 })
  await store.close()
})

test('a delaySave() whose dataFn throws logs the error and writes nothing', async (t) => {
  t.after(keepAlive()) // the debounce timer is unref'd: only a live loop lets it fire
  const path = file()
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: shutdown.register, logger, name: 'thrower' })
  const logged = logger.next('error')
  store.delaySave(() => { throw new Error('no state yet') }, 1)
  const line = await logged
  assert.match(String((line.fields['err'] as Error).message), /no state yet/)
  assert.equal(line.fields['store'], 'thrower')
  await store.saveNow()
  assert.throws(() => readFileSync(path), { code: 'ENOENT' })
  await store.close()
})

test('a failed delayed write is logged with name and path, swallowed, and retried by the next saveNow()', async (t) => {
  t.after(keepAlive()) // the debounce timer is unref'd: only a live loop lets it fire
  const parent = join(dir, `blocker${n++}`)
  writeFileSync(parent, 'a regular file where a directory should be')
  const path = join(parent, 'data.json')
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: shutdown.register, logger, name: 'blocked' })
  const logged = logger.next('error')
  store.delaySave(() => ({ kept: true }), 1)
  const line = await logged
  assert.equal(line.fields['store'], 'blocked')
  assert.equal(line.fields['path'], path)
  assert.equal((line.fields['err'] as { code: string }).code, 'ERR_STORE_WRITE')
  const { rmSync } = await import('node:fs')
  rmSync(parent)
  await store.saveNow()
  assert.deepEqual(readJson(path), { kept: true })
  await store.close()
})

test('save() rejects when its write fails, and the previous file stays intact', async () => {
  const path = file()
  const store = new Store<unknown>({ path, shutdownRegister: shutdown.register })
  await store.save({ good: 1 })
  await assert.rejects(store.save({ bad: () => 1 }), { code: 'ERR_STORE_DATA_CLONE' })
  assert.deepEqual(readJson(path), { good: 1 })
  await store.close()
})

test('saveNow() with nothing pending and nothing in flight writes nothing', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const store = new Store({ path, shutdownRegister: shutdown.register })
  await store.saveNow()
  assert.equal(starts.count, 0)
  await store.close()
})

test('saveNow() waits for the in-flight write, then writes what is pending', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const inFlight = store.save({ burnMs: 60, v: 1 })
  store.delaySave(() => ({ burnMs: 0, v: 2 }), 60_000)
  await store.saveNow()
  assert.deepEqual(readJson(path), { burnMs: 0, v: 2 })
  await inFlight
  await store.close()
})

test('saveNow() rejects when the write it made fails', async () => {
  const parent = join(dir, `blocker${n++}`)
  writeFileSync(parent, '')
  const store = new Store({ path: join(parent, 'x.json'), shutdownRegister: shutdown.register, logger: recordingLogger() })
  store.delaySave(() => ({ a: 1 }), 60_000)
  await assert.rejects(store.saveNow(), { code: 'ERR_STORE_WRITE' })
  await assert.rejects(store.close(), { code: 'ERR_STORE_WRITE' })
})

test("saveNow() does not reject for an earlier in-flight write's failure", async () => {
  const path = file()
  const store = new Store<unknown>({ path, shutdownRegister: shutdown.register })
  const failing = store.save({ fn: Symbol('not cloneable') })
  const now = store.saveNow()
  await assert.rejects(failing, { code: 'ERR_STORE_DATA_CLONE' })
  await now
  await store.close()
})

test('a hand-off slower than handoffWarnMs logs one warning per store, with name, path, size and time', async () => {
  const path = file()
  const logger = recordingLogger()
  const store = new Store<unknown>({ path, shutdownRegister: shutdown.register, logger, name: 'big', handoffWarnMs: 0 })
  await store.save({ warm: true }) // the first hand-off may be queued while the worker starts
  await store.save({ records: Array.from({ length: 10_000 }, (_, i) => ({ i, name: `record ${i}` })) })
  await store.save({ again: true })
  const warnings = logger.lines.filter((line) => line.level === 'warn')
  assert.equal(warnings.length, 1)
  const fields = warnings[0]?.fields ?? {}
  assert.equal(fields['store'], 'big')
  assert.equal(fields['path'], path)
  assert.equal(typeof fields['bytes'], 'number')
  assert.equal(typeof fields['handoffMs'], 'number')
  assert.match(warnings[0]?.message ?? '', /KeyedStore/)
  await store.close()
})

test('no hand-off warning for a value under 64 KiB, however slow its hand-off', async () => {
  const logger = recordingLogger()
  const store = new Store<unknown>({ path: file(), shutdownRegister: shutdown.register, logger, handoffWarnMs: 0 })
  await store.save({ a: 1 })
  await store.save({ a: 2 })
  assert.equal(logger.lines.filter((line) => line.level === 'warn').length, 0)
  await store.close()
})

test('no hand-off warning below the threshold', async () => {
  const logger = recordingLogger()
  const store = new Store<unknown>({ path: file(), shutdownRegister: shutdown.register, logger, handoffWarnMs: Infinity })
  await store.save({ a: 1 })
  await store.save({ a: 2 })
  assert.equal(logger.lines.filter((line) => line.level === 'warn').length, 0)
  await store.close()
})

test('fifty saves requested during one write make one more write, not fifty hand-offs', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const store = new Store({ path, shutdownRegister: shutdown.register, codec: slow })
  const saves = [store.save({ burnMs: 80, v: 0 })]
  for (let v = 1; v <= 50; v++) saves.push(store.save({ burnMs: 0, v }))
  await Promise.all(saves)
  assert.equal(starts.count, 2)
  assert.deepEqual(readJson(path), { burnMs: 0, v: 50 })
  await store.close()
})

// What is checked is what is written: the value is encoded (JSON) or copied (other codecs) when
// the write starts, not when a starting or busy worker finally takes the task.

test('a value changed right after save() on a starting pool is written as it was when save() was called', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const store = new Store<{ cents: number, tags: string[] }>({ path: file(), shutdownRegister: shutdown.register, pool })
  const value = { cents: 1999, tags: ['a'] }
  const saving = store.save(value)
  value.cents = 1
  value.tags.push('added later')
  await saving
  assert.equal(readFileSync(store.path, 'utf8'), '{"cents":1999,"tags":["a"]}')
  await store.close()
  await pool.close()
})

test('a toJSON() added and a field changed right after save() on a busy pool change nothing: the file holds JSON.stringify of the value at save() time', async () => {
  class Money { constructor (readonly cents: number) {} toJSON (): string { return `$${(this.cents / 100).toFixed(2)}` } }
  const pool = new WriterPool({ maxThreads: 1 })
  const busy = new Store({ path: file(), shutdownRegister: shutdown.register, pool, codec: slow })
  await busy.save({ burnMs: 0 }) // the worker is up
  const store = new Store<{ price: { cents: number } }>({ path: file(), shutdownRegister: shutdown.register, pool })
  const value = { price: { cents: 1999 } }
  const occupying = busy.save({ burnMs: 100 })
  const expected = JSON.stringify(value)
  const saving = store.save(value)
  Object.setPrototypeOf(value.price, Money.prototype)
  value.price.cents = 1
  await Promise.all([occupying, saving])
  assert.equal(readFileSync(store.path, 'utf8'), expected)
  await Promise.all([busy.close(), store.close()])
  await pool.close()
})

test('codecs.module(): a value changed right after save() on a busy pool is encoded as it was when save() was called', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const store = new Store({ path: file(), shutdownRegister: shutdown.register, pool, codec: slow })
  await store.save({ burnMs: 0 })
  const occupying = new Store({ path: file(), shutdownRegister: shutdown.register, pool, codec: slow })
  const busy = occupying.save({ burnMs: 100 })
  const value = { burnMs: 0, v: 1 }
  const saving = store.save(value)
  value.v = 2
  await Promise.all([busy, saving])
  assert.deepEqual(readJson(store.path), { burnMs: 0, v: 1 })
  await Promise.all([occupying.close(), store.close()])
  await pool.close()
})

test('codecs.raw(): a Uint8Array view changed right after save() on a starting pool is written as it was', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const store = new Store({ path: file(), shutdownRegister: shutdown.register, pool, codec: codecs.raw() })
  const backing = new Uint8Array([0, 104, 105, 0])
  const saving = store.save(backing.subarray(1, 3))
  backing.set([0, 120, 120, 0])
  await saving
  assert.equal(readFileSync(store.path, 'utf8'), 'hi')
  await store.close()
  await pool.close()
})

test('stats: checkMs includes the encoding on the main thread, and mainMs includes checkMs', async () => {
  const store = new Store<unknown>({ path: file(), shutdownRegister: shutdown.register })
  await store.save({ warm: true })
  // A value whose JSON.stringify is measurable: the check alone was about 1/8 of it.
  const value = { records: Array.from({ length: 20_000 }, (_, i) => ({ i, name: `record ${i}`, tags: ['a', 'b'] })) }
  const rounds = 5
  let stringifyMs = Infinity
  let checkMs = Infinity
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    JSON.stringify(value)
    stringifyMs = Math.min(stringifyMs, performance.now() - start)
    value.records[0] = { i: -i, name: 'changed', tags: [] } // a real write each round
    await store.save(value)
    const last = store.stats().lastWrite
    checkMs = Math.min(checkMs, last?.checkMs ?? Infinity)
    if (last?.mainMs !== undefined) assert.ok(last.mainMs >= last.checkMs)
  }
  assert.ok(checkMs >= stringifyMs * 0.5, `checkMs ${checkMs.toFixed(2)} ms should include JSON.stringify (${stringifyMs.toFixed(2)} ms alone)`)
  await store.close()
})
