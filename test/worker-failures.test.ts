import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, Store, StoreWriteError, WriterPool } from '../src/index.js'
import type { Behaviour } from './fixtures/bad-codecs.js'
import { fakeRegister, mockClock, tempDir } from './helpers.js'

const dir = tempDir()
const codec = codecs.module<{ behave: Behaviour }>(new URL('./fixtures/bad-codecs.js', import.meta.url))
let n = 0

function setup (pool: WriterPool): { store: Store<{ behave: Behaviour }>, path: string } {
  const path = join(dir, `w${n++}.json`)
  return { path, store: new Store({ path, shutdownRegister: fakeRegister().register, codec, pool }) }
}

async function failsThenRecovers (pool: WriterPool, behave: Behaviour, expected: { code: string, message?: RegExp }): Promise<void> {
  const { store, path } = setup(pool)
  await store.save({ behave: 'ok' })
  await assert.rejects(store.save({ behave }), expected)
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { behave: 'ok' }, 'the previous file is intact')
  await store.save({ behave: 'ok' })
  await store.close()
}

test('an encoder that calls process.exit rejects the write with ERR_STORE_WRITE; the next write uses a fresh worker', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  await failsThenRecovers(pool, 'exit', { code: 'ERR_STORE_WRITE', message: /worker died/ })
  await pool.close()
})

test('an encoder that throws rejects with ERR_STORE_ENCODE carrying its message', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  await failsThenRecovers(pool, 'throw', { code: 'ERR_STORE_ENCODE', message: /encoder exploded/ })
  await pool.close()
})

test('an encoder that returns neither a string nor bytes rejects with ERR_STORE_ENCODE saying what it returned', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  await failsThenRecovers(pool, 'number', { code: 'ERR_STORE_ENCODE', message: /returned a number/ })
  await pool.close()
})

test('an encoder that never returns is cut off at writeTimeout with ERR_STORE_WRITE', { timeout: 30_000 }, async (t) => {
  // On a mocked clock the spinning write is cut off exactly at writeTimeout, and the writes either
  // side of it (a worker starting, on a busy machine) can take as long as they take.
  const clock = mockClock(t)
  const pool = new WriterPool({ maxThreads: 1, writeTimeout: 1500 })
  const { store, path } = setup(pool)
  await store.save({ behave: 'ok' })
  let settled = false
  const spinning = store.save({ behave: 'spin' })
  spinning.then(() => { settled = true }, () => { settled = true })
  clock.tick(1499)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(settled, false, 'not cut off before writeTimeout')
  clock.tick(1)
  await assert.rejects(spinning, { code: 'ERR_STORE_WRITE', message: /writeTimeout/ })
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { behave: 'ok' }, 'the previous file is intact')
  await store.save({ behave: 'ok' })
  await store.close()
  await pool.close()
})

test("an encoder that exhausts the worker's heap limit rejects with ERR_STORE_WRITE and the process survives", async () => {
  const pool = new WriterPool({ maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 } })
  await failsThenRecovers(pool, 'heap', { code: 'ERR_STORE_WRITE' })
  await pool.close()
})

test('the worker failure keeps the original Piscina error as the cause', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const { store } = setup(pool)
  await assert.rejects(store.save({ behave: 'exit' }), (err: unknown) => {
    assert.ok(err instanceof StoreWriteError)
    assert.ok(err.cause instanceof Error)
    return true
  })
  await store.close().catch(() => {})
  await pool.close()
})

function nested (depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  let node = root
  for (let i = 0; i < depth; i++) {
    const child: Record<string, unknown> = {}
    node['child'] = child
    node = child
  }
  return root
}

const threadCodec = codecs.module<unknown>(new URL('./fixtures/thread-codec.js', import.meta.url))

/** The id of the worker thread that encodes the next write through `pool`. */
async function encodingThread (pool: WriterPool): Promise<number> {
  const path = join(dir, `thread${n++}.json`)
  const probe = new Store<unknown>({ path, shutdownRegister: fakeRegister().register, codec: threadCodec, pool })
  await probe.save('probe')
  await probe.close()
  return (JSON.parse(readFileSync(path, 'utf8')) as { threadId: number }).threadId
}

test('a value 5,000 levels deep under the JSON codec is refused as too deep to encode, permanently, and the worker is kept', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const before = await encodingThread(pool)
  const path = join(dir, `deep${n++}.json`)
  const store = new Store<unknown>({ path, shutdownRegister: fakeRegister().register, pool })
  await assert.rejects(store.save(nested(5000)), { code: 'ERR_STORE_ENCODE', message: /nested too deeply to encode/ })
  await store.close() // resolves: the value was not kept for a retry that would fail again
  assert.equal(store.stats().failures, 1)
  assert.equal(await encodingThread(pool), before, 'the same worker encodes the next write')
  await pool.close()
})

test('a value 5,000 levels deep under codecs.module() is refused as too deep to copy, permanently, and the worker is kept', async () => {
  const pool = new WriterPool({ maxThreads: 1 })
  const before = await encodingThread(pool)
  const path = join(dir, `deep${n++}.json`)
  const store = new Store<unknown>({ path, shutdownRegister: fakeRegister().register, pool, codec: threadCodec })
  await assert.rejects(store.save(nested(5000)), { code: 'ERR_STORE_DATA_CLONE', message: /nested too deeply to copy/ })
  await store.close()
  assert.equal(store.stats().failures, 1)
  assert.equal(await encodingThread(pool), before, 'the same worker encodes the next write')
  await pool.close()
})
