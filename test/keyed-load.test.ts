import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { codecs, KeyedStore, type KeyedStoreOptions, Store } from '../src/index.js'
import { kPinnedWorker } from '../src/symbols.js'
import { fakeRegister, mockClock, recordingLogger, tempDir } from './helpers.js'
import { fixture } from './rel-helpers.js'

// How KeyedStore.load() reads a file, and what a store accepts before and after it.

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `l${n++}.json`)
const open = <V>(path: string, extra: Partial<KeyedStoreOptions<V>> = {}): KeyedStore<string, V> =>
  new KeyedStore<string, V>({ path, shutdownRegister: fakeRegister().register, delayMs: 60_000, ...extra })

test('set(), delete() and clear() before load() throw ERR_STORE_STATE, and the file keeps its entries', async () => {
  const path = file()
  writeFileSync(path, '{"alice":1,"bob":2}')
  const store = open<number>(path)
  assert.throws(() => store.set('carol', 3), { code: 'ERR_STORE_STATE', message: /load\(\)/ })
  assert.throws(() => store.delete('alice'), { code: 'ERR_STORE_STATE' })
  assert.throws(() => { store.clear() }, { code: 'ERR_STORE_STATE' })
  await store.saveNow()
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), '{"alice":1,"bob":2}')
})

test('after load(), a set() keeps the entries that were on disk', async () => {
  const path = file()
  writeFileSync(path, '{"alice":1,"bob":2}')
  const store = open<number>(path)
  await store.load()
  store.set('carol', 3)
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), '{"alice":1,"bob":2,"carol":3}')
})

function depthOf (value: unknown): number {
  let depth = 0
  for (let at = value; Array.isArray(at); at = at[0]) depth++
  return depth
}

function nested (depth: number): string {
  return '{"deep":' + '['.repeat(depth) + ']'.repeat(depth) + ',"flat":1}'
}

test('load() of a file nested 10,000 levels deep loads, as Store.load() does', async () => {
  const path = file()
  writeFileSync(path, nested(10_000))
  const plain = new Store<Record<string, unknown>>({ path, shutdownRegister: fakeRegister().register })
  const viaStore = await plain.load()
  await plain.close()
  // A worker stuck on the depth would fail the load at writeTimeout rather than hang the test.
  const store = open<unknown>(path, { writeTimeout: 5000 })
  const map = await store.load()
  // Compared by walking, not by deepEqual or JSON.stringify, which would recurse 10,000 deep here.
  assert.deepEqual([...map.keys()], Object.keys(viaStore ?? {}))
  assert.equal(depthOf(map.get('deep')), 10_000)
  assert.equal(depthOf(viaStore?.['deep']), 10_000)
  assert.equal(map.get('flat'), 1)
  // The worker built its own mirror from the same bytes: a save writes the same deep value back.
  store.set('flat', 2)
  await store.saveNow()
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), nested(10_000).replace('"flat":1', '"flat":2'))
})

test("a worker load that outlives writeTimeout is reported as the load's, and the next write rebuilds the mirror from the file", async (t) => {
  const clock = mockClock(t)
  const path = file()
  writeFileSync(path, '{"a":1}')
  const logger = recordingLogger()
  const store = open<unknown>(path, { writeTimeout: 300, logger, codec: codecs.module(new URL('./fixtures/keyed-slow-decode.js', import.meta.url)) })
  const logged = logger.next('error')
  // The entries are decoded on this thread: load() does not wait for the worker's mirror.
  assert.deepEqual(Object.fromEntries(await store.load()), { a: 1 })
  clock.tick(299)
  assert.deepEqual(logger.lines, [], 'the worker is not given up on before writeTimeout')
  clock.tick(1)
  const { fields, message } = await logged
  const err = fields['err'] as Error & { code?: string }
  assert.equal(err.code, 'ERR_STORE_READ')
  assert.match(err.message, /the load took longer than writeTimeout \(300 ms\)/)
  assert.doesNotMatch(err.message, /the write/)
  assert.match(message, /next write rebuilds/)
  await store.close()
})

test('a request the worker cannot handle is answered at once with a failure, never left to the timeout', async () => {
  const path = file()
  const store = open<unknown>(path, { writeTimeout: 30_000 })
  await store.load()
  // Left to the timeout, the request would reject (its worker terminated) 30 s later instead
  // of resolving with this answer: the outcome says which happened, so no clock is read.
  const bogus = { type: 'no-such-request' } as unknown as Parameters<typeof store[typeof kPinnedWorker]['request']>[0]
  const answer = await store[kPinnedWorker].request(bogus).response
  assert.equal(answer.type, 'failed')
  assert.match((answer as { message: string }).message, /no-such-request/)
  // The worker survived and still serves the store.
  store.set('a', 1)
  await store.saveNow()
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), '{"a":1}')
})

test('set(key, undefined) throws ERR_STORE_INVALID_ARGUMENT naming delete(), with and without a journal', async () => {
  for (const journal of [false, true]) {
    const path = file()
    const store = open<unknown>(path, { journal })
    await store.load()
    store.set('kept', 1)
    assert.throws(() => store.set('gone', undefined), { code: 'ERR_STORE_INVALID_ARGUMENT', message: /delete\(\)/ })
    assert.equal(store.has('gone'), false)
    await store.close()
    const reloaded = open<unknown>(path, { journal })
    assert.deepEqual(Object.fromEntries(await reloaded.load()), { kept: 1 })
    await reloaded.close()
  }
})

test('a key that is not a string throws ERR_STORE_INVALID_ARGUMENT', async () => {
  const store = open<unknown>(file())
  await store.load()
  assert.throws(() => store.set(42 as unknown as string, 1), { code: 'ERR_STORE_INVALID_ARGUMENT' })
  await store.close()
})

test('a KeyedStore loads and saves in a process started with --input-type=module', async () => {
  const path = file()
  writeFileSync(path, '{"before":1}')
  const child = pathToFileURL(fixture('keyed-input-type.js')).href
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(child)})`, path], { encoding: 'utf8' })
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { ok: boolean, execArgv: string[], loaded: unknown, file: string, message?: string }
  assert.equal(result.ok, true, result.message)
  assert.deepEqual(result.execArgv, ['--input-type=module'])
  assert.deepEqual(result.loaded, { before: 1 })
  assert.equal(result.file, '{"before":1}')
  assert.ok(existsSync(`${path}.journal`))
})

test('a KeyedStore starts its worker in a process started with --expose-gc', async () => {
  const path = file()
  writeFileSync(path, '{"before":1}')
  const child = pathToFileURL(fixture('keyed-input-type.js')).href
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', `await import(${JSON.stringify(child)})`, path], { encoding: 'utf8' })
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { ok: boolean, loaded: unknown, message?: string }
  assert.equal(result.ok, true, result.message)
  assert.deepEqual(result.loaded, { before: 1 })
})

test('KeyedStore.load() of a large file costs about what Store.load() costs', async () => {
  const path = file()
  const value: Record<string, unknown> = {}
  for (let i = 0; i < 200_000; i++) value[`key${i}`] = { id: i, name: `entry ${i}`, tags: ['a', 'b'], on: i % 2 === 0 }
  writeFileSync(path, JSON.stringify(value))
  const timeStore = async (): Promise<number> => {
    const plain = new Store({ path, shutdownRegister: fakeRegister().register })
    const start = performance.now()
    await plain.load()
    const ms = performance.now() - start
    await plain.close()
    return ms
  }
  const timeKeyed = async (): Promise<number> => {
    const keyed = open<unknown>(path)
    const start = performance.now()
    await keyed.load()
    const ms = performance.now() - start
    await keyed.close()
    return ms
  }
  // Best of three each, interleaved, so a burst of load on the machine hits both alike.
  const plainMs: number[] = []
  const keyedMs: number[] = []
  for (let i = 0; i < 3; i++) { plainMs.push(await timeStore()); keyedMs.push(await timeKeyed()) }
  const ratio = Math.min(...keyedMs) / Math.min(...plainMs)
  assert.ok(ratio < 3, `KeyedStore.load() took ${ratio.toFixed(2)}x Store.load() (${keyedMs.map(Math.round).join('/')} against ${plainMs.map(Math.round).join('/')} ms)`)
})
