import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { setImmediate } from 'node:timers/promises'
import { KeyedStore, type KeyedStoreOptions } from '../src/index.js'
import { kPinnedWorker } from '../src/symbols.js'
import { fakeRegister, longestGap, tempDir } from './helpers.js'

// A save of a large change set (a first save, a bulk import) reaches the pinned worker in parts of
// a few milliseconds each, the loop running between them, ahead of the write itself: the same file
// as one message would give, the same ordering of set() and delete() around the save, and nothing
// written from a part of the changes.

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `parts${n++}.json`)
const open = <V>(path: string, extra: Partial<KeyedStoreOptions<V>> = {}): KeyedStore<string, V> =>
  new KeyedStore<string, V>({ path, shutdownRegister: fakeRegister().register, delayMs: 60_000, retry: false, ...extra })

const entry = (i: number): { id: number, name: string, on: boolean } => ({ id: i, name: `entry ${i}`, on: i % 2 === 0 })

function fill (store: KeyedStore<string, unknown>, count: number, from = 0): void {
  for (let i = from; i < from + count; i++) store.set(`e${i}`, entry(i))
}

const onDisk = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test('the first save of 200,000 entries never blocks the loop for longer than a fraction of JSON.stringify of the state', async (t) => {
  const stalls: number[] = []
  const stringifies: number[] = []
  // Interleaved, best of three each, so a burst of load on the machine hits both alike.
  for (let round = 0; round < 3; round++) {
    const path = file()
    const store = open<unknown>(path)
    await store.load()
    fill(store, 200_000)
    const start = performance.now()
    const text = JSON.stringify(Object.fromEntries(store.entries()))
    stringifies.push(performance.now() - start)
    stalls.push(await longestGap(async () => { await store.saveNow() }, 1))
    await store.close()
    assert.equal(readFileSync(path, 'utf8'), text)
  }
  const ratio = Math.min(...stalls) / Math.min(...stringifies)
  t.diagnostic(`longest stall ${stalls.map(Math.round).join('/')} ms against JSON.stringify ${stringifies.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 0.25, `the first save stalled the loop ${ratio.toFixed(2)}x as long as JSON.stringify of the state (${stalls.map(Math.round).join('/')} against ${stringifies.map(Math.round).join('/')} ms)`)
})

test('a set() or delete() made while a large save is in flight lands in the next save, not in that one', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  fill(store, 100_000)
  const taken = JSON.stringify(Object.fromEntries(store.entries()))
  let settled = false
  const saving = store.saveNow().finally(() => { settled = true })
  await setImmediate()
  // The write has started and is still sending its changes.
  assert.equal(settled, false)
  store.set('e5', 'late')
  store.delete('e7')
  store.set('added', 1)
  store.delete('e9')
  store.set('e9', 'back') // deleted and set again: moves to the end
  await saving
  assert.equal(readFileSync(path, 'utf8'), taken)
  await store.saveNow()
  await store.close()
  const expected = JSON.stringify(Object.fromEntries(store.entries()))
  assert.equal(readFileSync(path, 'utf8'), expected)
  const reopened = open<unknown>(path)
  const map = await reopened.load()
  await reopened.close()
  assert.equal(JSON.stringify(Object.fromEntries(map)), expected)
  assert.deepEqual([...map.keys()].slice(-2), ['added', 'e9'])
})

test('a worker that dies while a large save is in flight loses nothing: the save rejects, the file keeps the last saved state, and the next save writes every change', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  fill(store, 1000)
  await store.saveNow()
  const saved = readFileSync(path, 'utf8')
  const generation = store[kPinnedWorker].generation
  fill(store, 100_000, 500)
  store.delete('e3')
  let settled = false
  const outcome = store.saveNow().then(() => undefined, (err: unknown) => err).finally(() => { settled = true })
  await setImmediate()
  assert.equal(settled, false)
  await store[kPinnedWorker].terminate()
  const err = await outcome as Error & { code?: string }
  assert.equal(err?.code, 'ERR_STORE_WRITE')
  assert.match(err.message, /worker/)
  assert.equal(readFileSync(path, 'utf8'), saved)
  await store.saveNow()
  assert.ok(store[kPinnedWorker].generation > generation)
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), JSON.stringify(Object.fromEntries(store.entries())))
  assert.equal(store.size, 100_500 - 1)
})

test('a worker that dies while a small save is in flight leaves no unhandled rejection, writes that save whole or not at all, and the next save writes every change', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  // A large state, so the worker is still writing its snapshot when it is terminated.
  fill(store, 100_000)
  await store.saveNow()
  const saved = readFileSync(path, 'utf8')
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  try {
    fill(store, 5, 100_000)
    const outcome = store.saveNow().then(() => undefined, (err: unknown) => err)
    await store[kPinnedWorker].terminate()
    const err = await outcome as (Error & { code?: string }) | undefined
    // Either the save was refused and the file left as it was, or it was written whole (by the
    // worker before it went, or by its replacement): never half, never lost.
    if (err === undefined) assert.deepEqual(onDisk(path), Object.fromEntries(store.entries()))
    else {
      assert.equal(err.code, 'ERR_STORE_WRITE')
      assert.equal(readFileSync(path, 'utf8'), saved)
    }
    await store.saveNow()
    await setImmediate()
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
  await store.close()
  assert.deepEqual(onDisk(path), Object.fromEntries(store.entries()))
  assert.equal(store.size, 100_005)
})

test('a write whose parts did not all reach the worker writes nothing, and parts whose write never came are not written by the next one', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  store.set('a', 1)
  await store.saveNow()
  const worker = store[kPinnedWorker]
  // One part of two arrived: the write is refused and the file left as it was.
  worker.request({ type: 'ops', index: 0, base: 'mirror', part: { deletes: [], keys: ['ghost'], values: [1] } }).response.catch(() => {})
  const refused = await worker.request({ type: 'write', base: 'mirror', ops: [['other', 2]], staged: 2 }).response
  assert.equal(refused.type, 'written')
  assert.equal(refused.type === 'written' && refused.result.ok, false)
  assert.deepEqual(onDisk(path), { a: 1 })
  // A part whose write never came, then an ordinary save: the mirror is rebuilt from the file first.
  worker.request({ type: 'ops', index: 0, base: 'mirror', part: { deletes: [], keys: ['ghost'], values: [1] } }).response.catch(() => {})
  store.set('b', 2)
  await store.saveNow()
  await store.close()
  assert.deepEqual(onDisk(path), { a: 1, b: 2 })
})

test('a large change set on a journal is appended as one record, and load() gives it back', async () => {
  const path = file()
  const store = open<unknown>(path, { journal: true })
  await store.load()
  fill(store, 100_000)
  await store.saveNow() // the first snapshot
  const snapshotBytes = statSync(path).size
  for (let i = 0; i < 30_000; i++) store.set(`e${i * 3}`, { changed: i })
  for (let i = 0; i < 1000; i++) store.delete(`e${i * 3 + 1}`)
  await store.saveNow()
  await store.close()
  assert.equal(statSync(path).size, snapshotBytes, 'the snapshot was not rewritten')
  assert.ok(existsSync(`${path}.journal`))
  const reopened = open<unknown>(path, { journal: true })
  const map = await reopened.load()
  await reopened.close()
  assert.equal(JSON.stringify(Object.fromEntries(map)), JSON.stringify(Object.fromEntries(store.entries())))
})

test('a save that deletes and sets again 100,000 keys, in parts, writes them in their new order', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  fill(store, 100_000)
  await store.saveNow()
  store.clear()
  for (let i = 100_000 - 1; i >= 0; i -= 2) store.set(`e${i}`, { back: i })
  await store.saveNow()
  await store.close()
  const text = readFileSync(path, 'utf8')
  assert.equal(text, JSON.stringify(Object.fromEntries(store.entries())))
  assert.equal(store.size, 50_000)
  assert.equal(Object.keys(JSON.parse(text) as object)[0], 'e99999')
})
