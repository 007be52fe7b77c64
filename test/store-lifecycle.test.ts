import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { codecs, ShutdownRegistry, Store, StoreFlushError, StoreInvalidOptionError, WriterPool } from '../src/index.js'
import { fakeRegister, mockClock, recordingLogger, tempDir, writeSettled } from './helpers.js'
import { fixture, run } from './rel-helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `l${n++}.json`)
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test('the constructor calls shutdownRegister exactly once', async () => {
  const fake = fakeRegister()
  const store = new Store({ path: file(), shutdownRegister: fake.register })
  assert.equal(fake.flushes.length, 1)
  await store.close()
  assert.equal(fake.flushes.length, 1)
})

test('ShutdownRegistry.register works unbound and a flush writes what is pending in every store', async () => {
  const registry = new ShutdownRegistry()
  const { register } = registry
  const paths = [file(), file(), file()]
  const stores = paths.map((path, i) => new Store({ path, shutdownRegister: register, name: `s${i}` }))
  stores.forEach((store, i) => { store.delaySave(() => ({ i }), 60_000) })
  await registry.flush()
  paths.forEach((path, i) => { assert.deepEqual(readJson(path), { i }) })
  await Promise.all(stores.map(async (s) => { await s.close() }))
})

test('ShutdownRegistry.flush() runs every flush even when one fails, then reports all failures', async () => {
  const registry = new ShutdownRegistry()
  const blocker = join(dir, `blocker${n++}`)
  writeFileSync(blocker, '')
  const bad = new Store({ path: join(blocker, 'x.json'), shutdownRegister: registry.register, logger: recordingLogger() })
  const goodPath = file()
  const good = new Store({ path: goodPath, shutdownRegister: registry.register })
  bad.delaySave(() => ({ lost: false }), 60_000)
  good.delaySave(() => ({ ok: true }), 60_000)
  await assert.rejects(registry.flush(), (err: unknown) => {
    assert.ok(err instanceof StoreFlushError)
    assert.equal(err.code, 'ERR_STORE_FLUSH')
    assert.equal(err.errors.length, 1)
    assert.equal((err.errors[0] as { code: string }).code, 'ERR_STORE_WRITE')
    assert.match(err.message, /1 of 2 store flushes failed or did not finish: .*x\.json \(ERR_STORE_WRITE\)/)
    return true
  })
  assert.deepEqual(readJson(goodPath), { ok: true })
  await assert.rejects(registry.flush(), StoreFlushError, 'can be called again and still reports the failure')
  await good.close()
})

test('close() flushes what is pending, and later calls reject ERR_STORE_CLOSED', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  store.delaySave(() => ({ closed: true }), 60_000)
  await store.close()
  assert.deepEqual(readJson(path), { closed: true })
  await assert.rejects(store.save({}), { code: 'ERR_STORE_CLOSED' })
  await assert.rejects(store.load(), { code: 'ERR_STORE_CLOSED' })
  await assert.rejects(store.saveNow(), { code: 'ERR_STORE_CLOSED' })
  await assert.rejects(store.remove(), { code: 'ERR_STORE_CLOSED' })
  assert.throws(() => { store.delaySave(() => ({}), 1) }, { code: 'ERR_STORE_CLOSED' })
  await store.close()
})

test('a second store on the same resolved path throws ERR_STORE_PATH_IN_USE until the first is closed', async () => {
  const path = file()
  const first = new Store({ path, shutdownRegister: fakeRegister().register })
  assert.throws(() => new Store({ path: relative(process.cwd(), path), shutdownRegister: fakeRegister().register }), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_PATH_IN_USE')
    assert.ok((err as Error).message.includes(path))
    return true
  })
  await first.close()
  const second = new Store({ path, shutdownRegister: fakeRegister().register })
  await second.close()
})

test('remove() cancels the pending delaySave and deletes the file', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.save({ v: 1 })
  let called = false
  store.delaySave(() => { called = true; return { v: 2 } }, 20)
  await store.remove()
  assert.equal(existsSync(path), false)
  await store.saveNow()
  assert.equal(called, false)
  assert.equal(existsSync(path), false)
  await store.close()
})

test('remove() of a missing file resolves', async () => {
  const store = new Store({ path: file(), shutdownRegister: fakeRegister().register })
  await store.remove()
  await store.close()
})

test('name and path are exposed read-only; name defaults to the resolved path', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  assert.equal(store.path, path)
  assert.equal(store.name, path)
  assert.throws(() => { (store as { name: string }).name = 'x' }, TypeError)
  await store.close()
})

const register = fakeRegister().register
const badOptions: Array<[string, Record<string, unknown>]> = [
  ['path', { path: '', shutdownRegister: register }],
  ['path', { path: 42, shutdownRegister: register }],
  ['shutdownRegister', { path: 'x.json' }],
  ['codec', { path: 'x.json', shutdownRegister: register, codec: 'json' }],
  ['name', { path: 'x.json', shutdownRegister: register, name: '' }],
  ['mode', { path: 'x.json', shutdownRegister: register, mode: 0o100000 }],
  ['mode', { path: 'x.json', shutdownRegister: register, mode: 1.5 }],
  ['pool', { path: 'x.json', shutdownRegister: register, pool: {} }],
  ['logger', { path: 'x.json', shutdownRegister: register, logger: { error () {} } }],
  ['handoffWarnMs', { path: 'x.json', shutdownRegister: register, handoffWarnMs: -1 }]
]
for (const [option, options] of badOptions) {
  test(`the constructor rejects a bad options.${option} (${JSON.stringify(options[option]) ?? 'missing'}) with ERR_STORE_INVALID_OPTION`, () => {
    assert.throws(() => new Store(options as never), (err: unknown) => {
      assert.ok(err instanceof StoreInvalidOptionError)
      assert.equal(err.code, 'ERR_STORE_INVALID_OPTION')
      assert.match(err.message, new RegExp(`options\\.${option}`))
      return true
    })
  })
}

test('a rejected constructor does not claim the path', async () => {
  const path = file()
  assert.throws(() => new Store({ path, shutdownRegister: () => { throw new Error('registry closed') } }), /registry closed/)
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.close()
})

test('delaySave() throws ERR_STORE_INVALID_ARGUMENT for a bad dataFn or delay', async () => {
  const store = new Store({ path: file(), shutdownRegister: fakeRegister().register })
  assert.throws(() => { store.delaySave('x' as never, 1) }, { code: 'ERR_STORE_INVALID_ARGUMENT' })
  assert.throws(() => { store.delaySave(() => 1, -1) }, { code: 'ERR_STORE_INVALID_ARGUMENT' })
  assert.throws(() => { store.delaySave(() => 1, Number.NaN) }, { code: 'ERR_STORE_INVALID_ARGUMENT' })
  await store.close()
})

test('WriterPool validates its options', () => {
  assert.throws(() => new WriterPool({ maxThreads: 0 }), /options\.maxThreads/)
  assert.throws(() => new WriterPool({ idleTimeout: -1 }), /options\.idleTimeout/)
  assert.throws(() => new WriterPool({ writeTimeout: 1.5 }), /options\.writeTimeout/)
})

test('a store whose pool was closed rejects writes with ERR_STORE_CLOSED', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const store = new Store({ path: file(), shutdownRegister: fakeRegister().register, pool, codec: codecs.json() })
  await store.save({ a: 1 })
  await pool.close()
  await assert.rejects(store.save({ a: 2 }), { code: 'ERR_STORE_CLOSED' })
})

test('closing a pool lets the writes already running finish', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, pool, codec: codecs.module(new URL('./fixtures/slow-codec.js', import.meta.url)) })
  const saving = store.save({ burnMs: 50, v: 1 })
  await new Promise((resolve) => setImmediate(resolve))
  await pool.close()
  await saving
  assert.deepEqual(readJson(path), { burnMs: 50, v: 1 })
})

test('a store registers its flush with its name and path', async () => {
  const calls: unknown[][] = []
  const path = file()
  const store = new Store({ path, shutdownRegister: (...args: unknown[]) => { calls.push(args) }, name: 'named' })
  assert.equal(calls.length, 1)
  assert.deepEqual(calls[0]?.[1], { name: 'named', path })
  await store.close()
})

test('ShutdownRegistry.flush() resolves with a report of the stores that finished', async () => {
  const registry = new ShutdownRegistry()
  const a = new Store({ path: file(), shutdownRegister: registry.register, name: 'a' })
  const b = new Store({ path: file(), shutdownRegister: registry.register, name: 'b' })
  a.delaySave(() => ({ a: 1 }), 60_000)
  const report = await registry.flush()
  assert.deepEqual([...report.finished].sort(), ['a', 'b'])
  assert.deepEqual(report.failed, [])
  assert.deepEqual(report.unfinished, [])
  await Promise.all([a.close(), b.close()])
})

test('ShutdownRegistry.flush({ timeoutMs }) reports, per store, which finished, which failed and which did not finish', async (t) => {
  // On a mocked clock the timeout runs out only after the good store's write has ended, however
  // slow the machine: on the real one, a write slower than 200 ms would be reported as unfinished.
  const clock = mockClock(t)
  const registry = new ShutdownRegistry()
  const good = new Store({ path: file(), shutdownRegister: registry.register, name: 'good' })
  good.delaySave(() => ({ ok: true }), 60_000)
  registry.register(async () => { await new Promise(() => {}) }, { name: 'hung' })
  registry.register(async () => { throw new Error('disk on fire') }, { name: 'broken' })
  const goodWritten = writeSettled(good.path)
  const flushing = registry.flush({ timeoutMs: 200 })
  await goodWritten
  clock.tick(199)
  let settled = false
  flushing.then(() => { settled = true }, () => { settled = true })
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(settled, false, 'the flush waits for the hung store until timeoutMs')
  clock.tick(1)
  await assert.rejects(flushing, (err: unknown) => {
    assert.ok(err instanceof StoreFlushError)
    const { report } = err
    assert.match(err.message, /broken \(disk on fire\), hung \(did not finish within 200 ms\)/)
    assert.deepEqual(report.finished, ['good'])
    assert.deepEqual(report.failed.map((f) => f.store), ['broken'])
    assert.deepEqual(report.unfinished, ['hung'])
    const codes = err.errors.map((e: unknown) => (e as { code?: string }).code)
    assert.ok(codes.includes('ERR_STORE_FLUSH_TIMEOUT'))
    assert.match(String((err.errors.find((e: unknown) => (e as { code?: string }).code === 'ERR_STORE_FLUSH_TIMEOUT') as Error).message), /hung/)
    return true
  })
  await good.close()
})

test('ShutdownRegistry.flush() validates timeoutMs', async () => {
  await assert.rejects(new ShutdownRegistry().flush({ timeoutMs: -1 }), { code: 'ERR_STORE_INVALID_ARGUMENT' })
})

for (const umask of ['022', '077']) {
  test(`under umask ${umask}, created directories get exactly the documented mode: the file's mode plus search where it grants read`, { timeout: 60_000 }, async () => {
    const where = join(dir, `umask-${umask}`)
    mkdirSync(where)
    const result = await run(process.execPath, [fixture('umask-child.js'), where, umask])
    assert.equal(result.code, 0, result.stderr)
    // Each value: the top directory created, the one below it, then the file.
    assert.deepEqual(JSON.parse(result.stdout), {
      'store 600': '700 700 600',
      'keyed 600': '700 700 600',
      'store 660': '770 770 660',
      'keyed 660': '770 770 660',
      'store 644': '755 755 644',
      'keyed 644': '755 755 644'
    })
  })
}
