import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { codecs, KeyedStore, Store } from '../src/index.js'
import { kPinnedWorker } from '../src/symbols.js'
import { runSeed, seededRandom } from './crash/model.js'
import { countMessages, fakeRegister, keepAlive, nextMessage, tempDir } from './helpers.js'
import { journalFor, nextRecordFor } from './journal-helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `k${n++}.json`)
const open = <V>(path: string, extra: Partial<ConstructorParameters<typeof KeyedStore<string, V>>[0]> = {}): KeyedStore<string, V> =>
  new KeyedStore<string, V>({ path, shutdownRegister: fakeRegister().register, delayMs: 60_000, ...extra })
const fileText = (path: string): string => readFileSync(path, 'utf8')
const expected = (store: KeyedStore<string, unknown>): string => JSON.stringify(Object.fromEntries(store))

test('sets, updates and deletes are applied in order, and the file equals the map', async () => {
  const path = file()
  const store = open<unknown>(path)
  assert.equal(store.loaded, false)
  await store.load()
  assert.equal(store.loaded, true)
  store.set('a', 1).set('b', { nested: [1, 2] }).set('c', 'three')
  store.set('a', 10)
  store.delete('b')
  await store.saveNow()
  assert.equal(fileText(path), '{"a":10,"c":"three"}')
  store.set('d', null)
  store.delete('a')
  store.set('a', 'back') // deleted and set again: moves to the end, as in the Map
  await store.saveNow()
  assert.equal(fileText(path), expected(store))
  assert.equal(fileText(path), '{"c":"three","d":null,"a":"back"}')
  await store.close()
})

test('only changed entries cross to the worker after the first write', async (t) => {
  const path = file()
  const store = open<string>(path)
  await store.load()
  for (let i = 0; i < 5000; i++) store.set(`key${i}`, 'v'.repeat(100))
  await store.saveNow()
  const ends: Array<{ path: string, bytes: number }> = []
  const onEnd = (m: unknown): void => { if ((m as { path: string }).path === path) ends.push(m as { path: string, bytes: number }) }
  const dc = await import('node:diagnostics_channel')
  dc.subscribe('offload-store:write:end', onEnd)
  t.after(() => { dc.unsubscribe('offload-store:write:end', onEnd) })
  // Deliberately measured by what is written, not by time: a one-entry change yields a full file.
  store.set('key42', 'changed')
  await store.saveNow()
  assert.equal(ends.length, 1)
  assert.equal(fileText(path), expected(store))
  await store.close()
})

test('delete() returns whether the key existed; clear() empties the file', async () => {
  const path = file()
  const store = open<number>(path)
  await store.load()
  store.set('x', 1)
  assert.equal(store.delete('x'), true)
  assert.equal(store.delete('x'), false)
  store.set('y', 2).set('z', 3)
  await store.saveNow()
  store.clear()
  assert.equal(store.size, 0)
  await store.saveNow()
  assert.equal(fileText(path), '{}')
  await store.close()
})

test('set() schedules one debounced write for many changes', async (t) => {
  const path = file()
  const starts = countMessages('offload-store:write:start', path)
  t.after(starts.stop)
  t.after(keepAlive()) // the debounce timer is unref'd: only a live loop lets it fire
  const store = open<number>(path, { delayMs: 20 })
  await store.load()
  const written = nextMessage<{ path: string }>('offload-store:write:end', (m) => m.path === path)
  for (let i = 0; i < 200; i++) store.set(`k${i % 10}`, i)
  await written
  assert.equal(starts.count, 1)
  assert.equal(fileText(path), expected(store))
  await store.close()
})

test('a worker killed between saves is replaced, its mirror rebuilt from disk, and the next file is exact', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  for (let i = 0; i < 100; i++) store.set(`k${i}`, { i })
  await store.saveNow()
  const first = store[kPinnedWorker].generation
  await store[kPinnedWorker].terminate()
  store.set('k5', 'after the kill')
  store.delete('k7')
  store.set('new', true)
  await store.saveNow()
  assert.notEqual(store[kPinnedWorker].generation, first)
  assert.equal(fileText(path), expected(store))
  await store.close()
})

test('a worker killed between saves with a journal is rebuilt from snapshot + journal', async () => {
  const path = file()
  const store = open<unknown>(path, { journal: { compactRatio: 1000 } })
  await store.load()
  for (let i = 0; i < 50; i++) store.set(`k${i}`, i)
  await store.saveNow()
  store.set('k1', 'journaled')
  await store.saveNow()
  assert.ok(statSync(`${path}.journal`).size > 0, 'the second save went to the journal')
  await store[kPinnedWorker].terminate()
  store.set('k2', 'after the kill')
  await store.saveNow()
  await store.close()
  const reloaded = open<unknown>(path, { journal: true })
  await reloaded.load()
  assert.equal(reloaded.get('k1'), 'journaled')
  assert.equal(reloaded.get('k2'), 'after the kill')
  assert.equal(reloaded.size, 50)
  await reloaded.close()
})

test('load() after unsaved changes rejects ERR_STORE_STATE instead of discarding them', async () => {
  const store = open<number>(file())
  await store.load()
  store.set('a', 1)
  await assert.rejects(store.load(), { code: 'ERR_STORE_STATE' })
  await store.close()
})

test('load() reads a file written by a plain Store with the same codec', async () => {
  const path = file()
  const plain = new Store<Record<string, unknown>>({ path, shutdownRegister: fakeRegister().register, codec: codecs.json({ space: 2 }) })
  await plain.save({ a: 1, b: [true], c: { d: 'e' } })
  await plain.close()
  const keyed = open<unknown>(path, { codec: codecs.json({ space: 2 }) })
  const map = await keyed.load()
  assert.deepEqual([...map], [['a', 1], ['b', [true]], ['c', { d: 'e' }]])
  keyed.set('a', 2)
  await keyed.saveNow()
  assert.equal(fileText(path), JSON.stringify({ a: 2, b: [true], c: { d: 'e' } }, null, 2))
  await keyed.close()
})

test('load() of a file that is not an object of entries rejects ERR_STORE_DECODE', async () => {
  const path = file()
  writeFileSync(path, '[1,2]')
  const store = open<unknown>(path)
  await assert.rejects(store.load(), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /an object of entries/)
    return true
  })
  await store.close()
})

test('the journal: saves append, load() replays them over the snapshot', async () => {
  const path = file()
  const store = open<number>(path, { journal: { compactRatio: 1000 } })
  await store.load()
  store.set('a', 1)
  await store.saveNow() // no snapshot yet: this one writes it
  for (let i = 0; i < 10; i++) { store.set(`k${i}`, i); await store.saveNow() }
  assert.equal(fileText(path), '{"a":1}', 'the snapshot is untouched by appends')
  await store.close()
  const reloaded = open<number>(path, { journal: true })
  await reloaded.load()
  assert.equal(JSON.stringify(Object.fromEntries(reloaded)), '{"a":1,"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9}')
  await reloaded.close()
})

test('the journal: a torn last record is ignored, cut off, and later appends survive', async () => {
  const path = file()
  writeFileSync(path, '{"a":1}')
  const whole = journalFor('{"a":1}', [[['b', 2]]])
  const headerEnd = journalFor('{"a":1}', []).byteLength
  const torn = journalFor('{"a":1}', [[['c', 3]]]).subarray(headerEnd, headerEnd + 11)
  writeFileSync(`${path}.journal`, Buffer.concat([whole, torn]))
  const store = open<number>(path, { journal: { compactRatio: 1000 } })
  await store.load()
  assert.deepEqual([...store], [['a', 1], ['b', 2]])
  store.set('d', 4)
  await store.saveNow()
  await store.close()
  const reloaded = open<number>(path, { journal: true })
  await reloaded.load()
  assert.deepEqual([...reloaded], [['a', 1], ['b', 2], ['d', 4]])
  await reloaded.close()
})

test('the journal: a damaged record that is not the last rejects ERR_STORE_DECODE rather than dropping acknowledged data', async () => {
  const path = file()
  writeFileSync(path, '{}')
  const good = journalFor('{}', [[['a', 1]], [['b', 2]]])
  const bad = Buffer.from(good)
  bad[journalFor('{}', [[['a', 1]]]).byteLength - 2] = 0x20 // payload changed, checksum not
  writeFileSync(`${path}.journal`, bad)
  const store = open<number>(path, { journal: true })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  await store.close()
})

test('the journal compacts into the snapshot past compactBytes and empties itself', async () => {
  const path = file()
  const store = open<string>(path, { journal: { compactBytes: 200 } })
  await store.load()
  store.set('seed', 's')
  await store.saveNow()
  for (let i = 0; i < 20; i++) { store.set(`k${i}`, 'x'.repeat(30)); await store.saveNow() }
  assert.ok(statSync(`${path}.journal`).size < 200 + 100)
  assert.ok(fileText(path).includes('"k5"'), 'compaction folded early records into the snapshot')
  await store.close()
  const reloaded = open<string>(path, { journal: true })
  await reloaded.load()
  assert.equal(reloaded.size, 21)
  await reloaded.close()
})

test('the journal: a crash between the snapshot rename and the journal reset loads the new snapshot alone', async () => {
  const path = file()
  // The state a crash leaves at that instant: the new snapshot (holding every change, including the
  // compacting save's own, which never went to the journal) beside the old snapshot's journal,
  // whose last record names the new snapshot. Replaying it would rewind "a" to 1, so it is ignored.
  writeFileSync(path, '{"a":3,"b":2}')
  writeFileSync(`${path}.journal`, Buffer.concat([journalFor('{"a":0}', [[['a', 1], ['b', 2]]]), nextRecordFor('{"a":3,"b":2}')]))
  const store = open<number>(path, { journal: true })
  await store.load()
  assert.deepEqual(Object.fromEntries(store), { a: 3, b: 2 })
  store.set('c', 4)
  await store.saveNow()
  await store.close()
  const reloaded = open<number>(path, { journal: true })
  await reloaded.load()
  assert.deepEqual(Object.fromEntries(reloaded), { a: 3, b: 2, c: 4 })
  await reloaded.close()
})

test('the journal: a crash before the snapshot rename replays the journal over the old snapshot', async () => {
  const path = file()
  writeFileSync(path, '{"a":0}')
  writeFileSync(`${path}.journal`, Buffer.concat([journalFor('{"a":0}', [[['a', 1], ['b', 2]], [['a', 3]]]), nextRecordFor('{"a":3,"b":2}')]))
  const store = open<number>(path, { journal: true })
  await store.load()
  assert.deepEqual(Object.fromEntries(store), { a: 3, b: 2 })
  await store.close()
})

test('a child killed at random moments during saves and compactions always reloads the last acknowledged state or a later one', async (t) => {
  const seed = runSeed()
  t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} replays its random choices)`)
  const random = seededRandom(seed)
  const path = file()
  const child = fileURLToPath(new URL('./fixtures/keyed-child.js', import.meta.url))
  for (let round = 0; round < 8; round++) {
    const proc = spawn(process.execPath, [child, path, '3000'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let acked = 0
    let started = 0
    let acks = 0
    const killAfter = 3 + Math.floor(random() * 20)
    await new Promise<void>((resolve) => {
      let buffer = ''
      proc.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString()
        let newline
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const [what, v] = buffer.slice(0, newline).split(' ')
          buffer = buffer.slice(newline + 1)
          if (what === 'start') started = Number(v)
          if (what === 'ack') { acked = Number(v); acks++ }
          // Real time on purpose: the kill must land at an unpredictable point of the child's
          // work, which only the child's own progress decides; any point must pass.
          if (acks === killAfter) { acks++; setTimeout(() => proc.kill('SIGKILL'), random() * 15) }
        }
      })
      proc.on('exit', () => { resolve() })
    })
    const store = open<{ v: number }>(path, { journal: true })
    await store.load()
    const version = store.get('version')?.v ?? 0
    assert.ok(version >= acked && version <= started, `seed ${seed}, round ${round}: reloaded version ${version}, acknowledged ${acked}, last started ${started}`)
    for (const [key, value] of store) assert.ok(value.v <= version, `seed ${seed}, round ${round}: ${key} holds v${value.v}, newer than the state's version ${version}: a mixed state`)
    await store.close()
  }
  assert.ok(existsSync(path))
})

test('options are validated: delayMs, journal, writeTimeout, and codecs.raw()', () => {
  const register = fakeRegister().register
  assert.throws(() => new KeyedStore({ path: file(), shutdownRegister: register, delayMs: -1 }), /options\.delayMs/)
  assert.throws(() => new KeyedStore({ path: file(), shutdownRegister: register, journal: { compactBytes: 0 } }), /options\.journal\.compactBytes/)
  assert.throws(() => new KeyedStore({ path: file(), shutdownRegister: register, writeTimeout: -5 }), /options\.writeTimeout/)
  assert.throws(() => new KeyedStore({ path: file(), shutdownRegister: register, codec: codecs.raw() as never }), /options\.codec/)
  assert.throws(() => new KeyedStore({ path: file(), shutdownRegister: register, journal: true, codec: codecs.module<Record<string, unknown>>(new URL('./fixtures/point-codec.js', import.meta.url)) }), /options\.journal/)
})

test('a value with toJSON is refused with ERR_STORE_DATA_CLONE naming its key; the other changes of that save are written', async () => {
  class Money { toJSON (): string { return '1 EUR' } }
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  store.set('price', new Money())
  store.set('name', 'tea')
  await assert.rejects(store.saveNow(), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_DATA_CLONE')
    assert.match((err as Error).message, /\$\["price"\]/)
    return true
  })
  assert.equal(fileText(path), '{"name":"tea"}')
  store.set('price', '1 EUR')
  await store.saveNow()
  assert.equal(fileText(path), '{"name":"tea","price":"1 EUR"}')
  await store.close()
})

test('a value too deep to copy to the worker is refused naming its key, once: the other changes are written and the next save and close() succeed', async () => {
  const path = file()
  const store = open<unknown>(path)
  await store.load()
  const deep: Record<string, unknown> = {}
  let cursor = deep
  for (let i = 0; i < 5000; i++) { const next = {}; cursor['a'] = next; cursor = next }
  store.set('deep', deep)
  store.set('flat', 1)
  await assert.rejects(store.saveNow(), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_DATA_CLONE')
    assert.match((err as Error).message, /\$\["deep"\] is nested too deeply to copy/)
    return true
  })
  assert.equal(fileText(path), '{"flat":1}')
  store.set('next', 2)
  await store.saveNow()
  assert.equal(fileText(path), '{"flat":1,"next":2}')
  await store.close()
})

test('a failed write keeps the changes, and the next save writes them', async () => {
  const parent = join(dir, `blocker${n++}`)
  const path = join(parent, 'k.json')
  const store = open<number>(path)
  await store.load()
  const { rmSync } = await import('node:fs')
  rmSync(parent, { recursive: true }) // load() created it, for the store's lock file
  writeFileSync(parent, '') // the directory the file needs is a file now
  store.set('a', 1)
  await assert.rejects(store.saveNow(), { code: 'ERR_STORE_WRITE' })
  rmSync(parent)
  store.set('b', 2)
  await store.saveNow()
  assert.equal(fileText(path), '{"a":1,"b":2}')
  await store.close()
})

test('close() flushes, stops the pinned worker, and later calls reject ERR_STORE_CLOSED', async () => {
  const path = file()
  const store = open<number>(path)
  await store.load()
  store.set('a', 1)
  await store.close()
  assert.equal(fileText(path), '{"a":1}')
  assert.equal(store[kPinnedWorker].alive, false)
  await assert.rejects(store.saveNow(), { code: 'ERR_STORE_CLOSED' })
  assert.throws(() => store.set('b', 2), { code: 'ERR_STORE_CLOSED' })
})

test('appending to a journal beside a file ends up with the journal in mode 0o600', async () => {
  const path = file()
  const store = open<number>(path, { journal: { compactRatio: 1000 } })
  await store.load()
  store.set('a', 1); await store.saveNow()
  store.set('b', 2); await store.saveNow()
  assert.equal(statSync(`${path}.journal`).mode & 0o777, 0o600)
  appendFileSync(`${path}.journal`, '') // still a regular file we can open
  await store.close()
})

test('a journaled file opened without the journal option still loads its journal, and the next save folds it in', async () => {
  const path = file()
  const journaled = open<number>(path, { journal: { compactRatio: 1000 } })
  await journaled.load()
  journaled.set('a', 1); await journaled.saveNow()
  journaled.set('b', 2); await journaled.saveNow()
  await journaled.close()
  assert.equal(fileText(path), '{"a":1}', 'b lives only in the journal')
  const plain = open<number>(path)
  await plain.load()
  assert.deepEqual(Object.fromEntries(plain), { a: 1, b: 2 })
  plain.set('c', 3)
  await plain.saveNow()
  assert.equal(fileText(path), '{"a":1,"b":2,"c":3}')
  assert.equal(existsSync(`${path}.journal`), false, 'the journal was folded into the snapshot and removed')
  await plain.close()
})
