import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, Store } from '../src/index.js'
import { encode as slowEncode } from './fixtures/slow-codec.js'
import { fakeRegister, longestGap, tempDir } from './helpers.js'

const dir = tempDir()

test('a 200 ms CPU-bound encoder runs in a worker while the main thread keeps ticking', async () => {
  const path = join(dir, 'offloaded.json')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.module(new URL('./fixtures/slow-codec.js', import.meta.url)) })
  await store.save({ burnMs: 1 }) // start the worker and import the codec outside the measurement
  const gap = await longestGap(async () => { await store.save({ burnMs: 200 }) }, 5, 20)
  // Against the same encoder run inline in this process, not an absolute time: a busy machine
  // stretches both.
  const inline = await longestGap(() => { slowEncode({ burnMs: 200 }) }, 5, 20)
  assert.ok(gap < inline / 2, `longest gap between 5 ms ticks was ${gap.toFixed(1)} ms while a 200 ms encoder ran offloaded, ${inline.toFixed(1)} ms inline`)
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { burnMs: 200 })
  await store.close()
})

test('the same encoder run inline blocks the main thread for its whole duration', async () => {
  const gap = await longestGap(() => { slowEncode({ burnMs: 200 }) }, 5, 20)
  assert.ok(gap >= 190, `inline, the longest gap was only ${gap.toFixed(1)} ms`)
})

test('the encoder and the write run in a worker thread, never on the main thread', async () => {
  const path = join(dir, 'thread.json')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.module(new URL('./fixtures/thread-codec.js', import.meta.url)) })
  await store.save('hello')
  const written = JSON.parse(readFileSync(path, 'utf8')) as { value: string, isMainThread: boolean, threadId: number }
  assert.equal(written.value, 'hello')
  assert.equal(written.isMainThread, false)
  assert.notEqual(written.threadId, 0)
  await store.close()
})
