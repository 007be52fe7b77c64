import assert from 'node:assert/strict'
import { test } from 'node:test'
import { performance } from 'node:perf_hooks'
import { WriteScheduler } from '../src/write-scheduler.js'

/** A scheduler whose writes take `ms` and record what they wrote and when they finished. */
function harness (ms = 20): { scheduler: WriteScheduler<number>, durable: number[], failNext: () => void } {
  const durable: number[] = []
  let fail = false
  const scheduler = new WriteScheduler<number>({
    perform: async (payload) => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      if (fail) { fail = false; throw new Error(`write of ${payload} failed`) }
      durable.push(payload)
    },
    isPermanent: () => false,
    onDelayedError: () => {}
  }, { retry: false })
  return { scheduler, durable, failNext: () => { fail = true } }
}

test('flush() resolves only after the write a fired deadline started for pending data is durable', async () => {
  const { scheduler, durable } = harness()
  scheduler.schedule(1, 0)
  await new Promise((resolve) => setTimeout(resolve, 10)) // write 1 is running
  scheduler.schedule(2, 0) // its deadline fires while write 1 runs, and waits for it
  await new Promise((resolve) => setTimeout(resolve, 5))
  await scheduler.flush()
  assert.deepEqual(durable, [1, 2], 'write 2 is durable when flush() resolves')
})

test('flush() writes what is pending after the in-flight write', async () => {
  const { scheduler, durable } = harness()
  const first = scheduler.request(1)
  scheduler.schedule(2, 60_000)
  await scheduler.flush()
  assert.deepEqual(durable, [1, 2])
  await first
})

test('flush() with nothing pending and nothing in flight resolves at once and writes nothing', async () => {
  const { scheduler, durable } = harness()
  await scheduler.flush()
  assert.deepEqual(durable, [])
})

test("flush() ignores the in-flight write's failure but retries its kept data once, and rejects if that fails", async () => {
  const { scheduler, durable, failNext } = harness()
  failNext()
  const first = scheduler.request(1)
  const flushed = scheduler.flush()
  await assert.rejects(first, /write of 1 failed/)
  await flushed
  assert.deepEqual(durable, [1], 'the kept value was written by the flush')
})

test('requests made during a write coalesce: the newest wins and older ones resolve with it', async () => {
  const { scheduler, durable } = harness()
  const all = [scheduler.request(1), scheduler.request(2), scheduler.request(3), scheduler.request(4)]
  await Promise.all(all)
  assert.deepEqual(durable, [1, 4])
  assert.equal(scheduler.counts.coalesced, 2)
})

test('maxDelayMs caps how far a moving deadline can drift', async () => {
  const { durable } = harness(1)
  const capped = new WriteScheduler<number>({
    perform: async (payload) => { durable.push(payload) },
    isPermanent: () => false,
    onDelayedError: () => {}
  }, { maxDelayMs: 30 })
  const end = performance.now() + 200
  let i = 0
  while (performance.now() < end) {
    capped.schedule(++i, 1000)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  assert.ok(durable.length >= 2, `written ${durable.length} times in 200 ms with a 30 ms cap`)
  capped.stop()
})

test('unsavedSince is the time of the oldest request not yet durable: kept through a failed write and a newer request, cleared once written', async () => {
  const { scheduler, failNext } = harness()
  assert.equal(scheduler.unsavedSince, undefined)
  const before = performance.now()
  scheduler.schedule(1, 60_000)
  const first = scheduler.unsavedSince
  assert.ok(first !== undefined && first >= before)
  scheduler.schedule(2, 60_000)
  assert.equal(scheduler.unsavedSince, first, 'a newer request does not make older unsaved data younger')
  failNext()
  const flushing = scheduler.flush()
  scheduler.schedule(3, 60_000) // made during the write that is about to fail
  await assert.rejects(flushing)
  assert.equal(scheduler.unsavedSince, first, 'the failed write\'s data is still the oldest unsaved')
  await scheduler.flush()
  assert.equal(scheduler.unsavedSince, undefined)
})
