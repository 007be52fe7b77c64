import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { KeyedStore, Store } from '../src/index.js'
import { countMessages, fakeRegister, mockClock, nextMessage, recordingLogger, tempDir, writeSettled } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `o${n++}.json`)
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test('maxDelay writes a store touched more often than its delay at least that often', async (t) => {
  const clock = mockClock(t)
  const capped = file()
  const uncapped = file()
  const cappedWrites = countMessages('offload-store:write:start', capped)
  const uncappedWrites = countMessages('offload-store:write:start', uncapped)
  t.after(() => { cappedWrites.stop(); uncappedWrites.stop() })
  const a = new Store({ path: capped, shutdownRegister: fakeRegister().register, maxDelay: 60 })
  const b = new Store({ path: uncapped, shutdownRegister: fakeRegister().register })
  // A storm: a call every 5 ms for 600 ms, each moving the deadline 400 ms ahead. The clock stands
  // still while a write runs, so each one ends before the next call.
  for (let i = 1; i <= 120; i++) {
    a.delaySave(() => ({ i }), 400)
    b.delaySave(() => ({ i }), 400)
    const before = cappedWrites.count
    const settled = writeSettled(capped)
    clock.tick(5)
    if (cappedWrites.count > before) await settled
  }
  assert.equal(cappedWrites.count, 10, 'capped at 60 ms: written at 60, 120 ... 600 ms')
  assert.deepEqual(readJson(capped), { i: 120 })
  assert.equal(uncappedWrites.count, 0, 'without a cap, Home Assistant semantics write only after the storm')
  const written = writeSettled(uncapped)
  clock.tick(394)
  assert.equal(uncappedWrites.count, 0)
  clock.tick(1)
  await written
  assert.deepEqual(readJson(uncapped), { i: 120 }, 'written 400 ms after the last call')
  await Promise.all([a.close(), b.close()])
})

test('a failed write is retried with backoff without another call; lastError is set, then cleared by the success', async (t) => {
  const clock = mockClock(t)
  const parent = join(dir, `blocker${n++}`)
  writeFileSync(parent, '')
  const path = join(parent, 'data.json')
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, logger, retry: { initialMs: 30, maxMs: 200 } })
  const failed = logger.next('error')
  store.delaySave(() => ({ kept: 1 }), 0)
  clock.tick(1)
  await failed
  assert.equal((store.lastError as { code?: string } | undefined)?.code, 'ERR_STORE_WRITE')
  rmSync(parent)
  const written = writeSettled(path)
  clock.tick(29)
  assert.equal(starts.count, 1, 'no retry before initialMs')
  clock.tick(1)
  assert.equal(starts.count, 2, 'a retry at initialMs')
  await written
  assert.deepEqual(readJson(path), { kept: 1 })
  assert.equal(store.lastError, undefined)
  assert.equal(store.stats().failures, 1)
  await store.close()
})

test('retry: false keeps the data for the next flush but does not retry by itself', async (t) => {
  const clock = mockClock(t)
  const parent = join(dir, `blocker${n++}`)
  writeFileSync(parent, '')
  const path = join(parent, 'data.json')
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, logger, retry: false })
  await assert.rejects(store.save({ a: 1 }), { code: 'ERR_STORE_WRITE' })
  clock.runAll() // a retry timer, had one been armed, would start a write now
  assert.equal(starts.count, 1)
  rmSync(parent)
  await store.saveNow()
  assert.deepEqual(readJson(path), { a: 1 })
  await store.close()
})

test('unchanged bytes are not rewritten, and are counted in stats()', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.save({ same: true })
  const inode = statSync(path).ino
  await store.save({ same: true })
  assert.equal(statSync(path).ino, inode, 'no rename happened: the file is the same inode')
  await store.save({ same: false })
  assert.notEqual(statSync(path).ino, inode)
  const stats = store.stats()
  assert.equal(stats.writes, 3)
  assert.equal(stats.unchanged, 1)
  assert.equal(stats.lastWrite?.unchanged, false)
  await store.close()
})

test('skipUnchanged: false rewrites equal bytes', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, skipUnchanged: false })
  await store.save({ same: true })
  const inode = statSync(path).ino
  await store.save({ same: true })
  assert.notEqual(statSync(path).ino, inode)
  assert.equal(store.stats().unchanged, 0)
  await store.close()
})

test('stats() counts writes, bytes, failures, coalesced saves and the last write', async () => {
  const path = file()
  const store = new Store<unknown>({ path, shutdownRegister: fakeRegister().register })
  await store.save({ a: 1 })
  for (let i = 0; i < 10; i++) store.delaySave(() => ({ i }), 60_000)
  await store.saveNow()
  await assert.rejects(store.save({ f: () => 1 }), { code: 'ERR_STORE_DATA_CLONE' })
  const stats = store.stats()
  assert.equal(stats.writes, 2)
  assert.equal(stats.bytes, '{"a":1}'.length + '{"i":9}'.length)
  assert.equal(stats.failures, 1)
  assert.equal(stats.coalesced, 9)
  assert.equal(stats.lastWrite?.bytes, 7)
  assert.equal(typeof stats.lastWrite?.encodeMs, 'number')
  assert.equal(typeof stats.lastWrite?.totalMs, 'number')
  assert.equal((stats.lastError as { code?: string } | undefined)?.code, 'ERR_STORE_DATA_CLONE')
  await store.close()
})

test('diagnostics channels publish a write start, end (bytes and times) and error', async () => {
  const path = file()
  const store = new Store<unknown>({ path, shutdownRegister: fakeRegister().register, name: 'observed' })
  const started = nextMessage<{ path: string, store: string }>('offload-store:write:start', (m) => m.path === path)
  const ended = nextMessage<{ path: string, bytes: number, encodeMs: number, writeMs: number, totalMs: number }>('offload-store:write:end', (m) => m.path === path)
  await store.save({ x: 1 })
  assert.equal((await started).store, 'observed')
  const end = await ended
  assert.equal(end.bytes, 7)
  for (const key of ['encodeMs', 'writeMs', 'totalMs'] as const) assert.ok(end[key] >= 0)
  const errored = nextMessage<{ path: string, error: Error }>('offload-store:write:error', (m) => m.path === path)
  await assert.rejects(store.save({ f: Symbol('x') }))
  assert.equal(((await errored).error as { code?: string }).code, 'ERR_STORE_DATA_CLONE')
  await store.close()
})

test("onCorrupt: 'quarantine' moves an undecodable file aside, logs it, and loads as empty", async () => {
  const where = join(dir, `q${n++}`)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(where)
  const path = join(where, 'state.json')
  writeFileSync(path, '{ not json')
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, logger, onCorrupt: 'quarantine' })
  assert.equal(await store.load(), undefined)
  const moved = readdirSync(where).filter((name) => name.startsWith('state.json.corrupt.'))
  assert.equal(moved.length, 1)
  assert.equal(readFileSync(join(where, moved[0] ?? ''), 'utf8'), '{ not json')
  const line = logger.lines.find((l) => l.level === 'error')
  assert.equal(line?.fields['movedTo'], join(where, moved[0] ?? ''))
  await store.save({ fresh: true })
  assert.deepEqual(readJson(path), { fresh: true })
  await store.close()
})

test("onCorrupt: 'quarantine' on a KeyedStore moves the file and its journal aside", async () => {
  const where = join(dir, `kq${n++}`)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(where)
  const path = join(where, 'map.json')
  writeFileSync(path, '[')
  writeFileSync(`${path}.journal`, 'junk')
  const store = new KeyedStore({ path, shutdownRegister: fakeRegister().register, logger: recordingLogger(), onCorrupt: 'quarantine', journal: true })
  assert.equal((await store.load()).size, 0)
  assert.equal(readdirSync(where).filter((name) => name.includes('.corrupt.')).length, 2)
  await store.close()
})

test('the default onCorrupt rejects ERR_STORE_DECODE and leaves the file where it is', async () => {
  const path = file()
  writeFileSync(path, '{')
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  assert.equal(readFileSync(path, 'utf8'), '{')
  await store.close()
})

const strace = spawnSync('strace', ['-V']).status === 0
test('durability: full fsyncs the file and the directory, file only the file, none neither', { skip: strace ? false : 'strace is not installed' }, () => {
  const child = fileURLToPath(new URL('./fixtures/durability-child.js', import.meta.url))
  const counts: Record<string, number> = {}
  for (const durability of ['full', 'file', 'none']) {
    const out = spawnSync('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', join(dir, `strace-${durability}`), process.execPath, child, join(dir, `d-${durability}.json`), durability], { encoding: 'utf8' })
    assert.equal(out.status, 0, out.stderr)
    counts[durability] = readFileSync(join(dir, `strace-${durability}`), 'utf8').split('\n').filter((line) => /fsync\(/.test(line) && !/= -1/.test(line)).length
  }
  assert.deepEqual(counts, { full: 2, file: 1, none: 0 })
})

test('durability, maxDelay, retry and onCorrupt are validated', () => {
  const register = fakeRegister().register
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, durability: 'some' as never }), /options\.durability/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, maxDelay: -1 }), /options\.maxDelay/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, retry: { initialMs: 0 } }), /options\.retry\.initialMs/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, retry: { initialMs: 100, maxMs: 50 } }), /options\.retry\.maxMs/)
  assert.throws(() => new Store({ path: file(), shutdownRegister: register, onCorrupt: 'ignore' as never }), /options\.onCorrupt/)
})
