import assert from 'node:assert/strict'
import { mock, test, type TestContext } from 'node:test'
import { WriteScheduler, type WriteSchedulerOptions } from '../src/write-scheduler.js'

// No test here waits on real time: the scheduler's timers are node:test's mocked setTimeout and its
// clock is the mocked Date, both moved only by tick(); a write runs until the test finishes it.

/** Lets every promise continuation run: setImmediate is not mocked and fires after the microtasks. */
async function settle (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

interface Harness {
  readonly scheduler: WriteScheduler<number>
  /** Payloads in the order their writes started. */
  readonly started: number[]
  /** The mocked time at which each write started. */
  readonly startedAt: number[]
  /** Payloads whose write succeeded, in order. */
  readonly durable: number[]
  /** Errors reported for delayed writes. */
  readonly delayedErrors: unknown[]
  /** Ends the oldest running write (failing it with `error` when given), then lets its continuations run. */
  finish: (error?: Error) => Promise<void>
  /** Moves the mocked clock `ms` forward one millisecond at a time, so each timer sees its own due time. */
  tick: (ms: number) => void
}

/**
 * A scheduler on a mocked clock that starts at 1000, whose writes run until `finish()` ends them.
 * With `instant`, every write succeeds as soon as it starts.
 */
function harness (t: TestContext, options: WriteSchedulerOptions = {}, instant = false): Harness {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1000 })
  t.after(() => { mock.timers.reset() })
  const started: number[] = []
  const startedAt: number[] = []
  const durable: number[] = []
  const delayedErrors: unknown[] = []
  const running: Array<(error?: Error) => void> = []
  const scheduler = new WriteScheduler<number>({
    perform: async (payload) => {
      started.push(payload)
      startedAt.push(Date.now())
      if (!instant) {
        await new Promise<void>((resolve, reject) => {
          running.push((error) => { if (error === undefined) resolve(); else reject(error) })
        })
      }
      durable.push(payload)
    },
    isPermanent: () => false,
    onDelayedError: (err) => { delayedErrors.push(err) }
  }, { retry: false, ...options, clock: { now: () => Date.now() } })
  return {
    scheduler,
    started,
    startedAt,
    durable,
    delayedErrors,
    finish: async (error) => {
      await settle() // a flush() starts its write a microtask after the call
      const end = running.shift()
      assert.ok(end !== undefined, 'a write is running')
      end(error)
      await settle()
    },
    tick: (ms) => { for (let i = 0; i < ms; i++) mock.timers.tick(1) }
  }
}

test('flush() resolves only after the write a fired deadline started for pending data is durable', async (t) => {
  const h = harness(t)
  h.scheduler.schedule(1, 0)
  h.tick(1)
  assert.deepEqual(h.started, [1], 'the deadline started write 1')
  h.scheduler.schedule(2, 0)
  h.tick(1) // its deadline fires while write 1 runs, and waits for it
  let flushed = false
  const flushing = h.scheduler.flush().then(() => { flushed = true })
  await h.finish()
  assert.deepEqual(h.started, [1, 2], 'write 2 started once write 1 ended')
  assert.equal(flushed, false, 'flush() waits for write 2')
  await h.finish()
  await flushing
  assert.deepEqual(h.durable, [1, 2], 'write 2 is durable when flush() resolves')
})

test('flush() writes what is pending after the in-flight write', async (t) => {
  const h = harness(t)
  const first = h.scheduler.request(1)
  h.scheduler.schedule(2, 60_000)
  const flushing = h.scheduler.flush()
  await h.finish()
  assert.deepEqual(h.started, [1, 2], 'the pending data is written without waiting for its deadline')
  await h.finish()
  await Promise.all([first, flushing])
  assert.deepEqual(h.durable, [1, 2])
})

test('flush() with nothing pending and nothing in flight resolves at once and writes nothing', async (t) => {
  const h = harness(t)
  await h.scheduler.flush()
  assert.deepEqual(h.started, [])
})

test("flush() ignores the in-flight write's failure but retries its kept data once, and rejects if that fails", async (t) => {
  const h = harness(t)
  const first = h.scheduler.request(1)
  const flushed = h.scheduler.flush()
  const firstFailed = assert.rejects(first, /write of 1 failed/)
  await h.finish(new Error('write of 1 failed'))
  await firstFailed
  assert.deepEqual(h.started, [1, 1], 'the flush wrote the kept value again')
  await h.finish()
  await flushed
  assert.deepEqual(h.durable, [1], 'the kept value was written by the flush')

  h.scheduler.schedule(2, 60_000)
  const secondFailed = assert.rejects(h.scheduler.flush(), /write of 2 failed/, 'a failure of the write the flush made is its own')
  await h.finish(new Error('write of 2 failed'))
  await secondFailed
})

test('requests made during a write coalesce: the newest wins and older ones resolve with it', async (t) => {
  const h = harness(t)
  const all = [h.scheduler.request(1), h.scheduler.request(2), h.scheduler.request(3), h.scheduler.request(4)]
  await h.finish()
  await h.finish()
  await Promise.all(all)
  assert.deepEqual(h.durable, [1, 4])
  assert.equal(h.scheduler.counts.coalesced, 2)
})

test('schedule() writes at now + delay and not a millisecond before; a later call moves the deadline', async (t) => {
  const h = harness(t, {}, true)
  h.scheduler.schedule(1, 100)
  h.tick(50)
  h.scheduler.schedule(2, 100)
  h.tick(99)
  assert.deepEqual(h.started, [], 'the first deadline (1100) was moved to 1150')
  h.tick(1)
  assert.deepEqual(h.started, [2])
  assert.deepEqual(h.startedAt, [1150])
  await settle()
  assert.equal(h.scheduler.hasPending, false)
})

test('maxDelayMs caps how far a moving deadline can drift', async (t) => {
  const capped = harness(t, { maxDelayMs: 30 }, true)
  const uncappedAt: number[] = []
  const uncapped = new WriteScheduler<number>({
    perform: async () => { uncappedAt.push(Date.now()) },
    isPermanent: () => false,
    onDelayedError: () => {}
  }, { clock: { now: () => Date.now() } })
  // A storm: a call every 2 ms for 200 ms, each moving the deadline 1000 ms ahead.
  for (let i = 1; i <= 100; i++) {
    capped.scheduler.schedule(i, 1000)
    uncapped.schedule(i, 1000)
    capped.tick(2)
    await settle()
  }
  // Each write takes the data scheduled last; the next cap counts from the first call after it.
  assert.deepEqual(capped.startedAt, [1030, 1060, 1090, 1120, 1150, 1180])
  assert.deepEqual(capped.started, [15, 30, 45, 60, 75, 90])
  assert.deepEqual(uncappedAt, [], 'without a cap, Home Assistant semantics write only after the storm')
  capped.scheduler.stop()
  capped.tick(1000)
  assert.deepEqual(uncappedAt, [2198], 'written 1000 ms after the last call')
})

test('a failed delayed write is retried after initialMs, then after twice as long, never longer than maxMs, until it succeeds', async (t) => {
  const h = harness(t, { retry: { initialMs: 30, maxMs: 100 } })
  h.scheduler.schedule(1, 0)
  h.tick(1)
  for (const [failed, wait] of [30, 60, 100, 100].entries()) {
    await h.finish(new Error('disk full'))
    h.tick(wait - 1)
    assert.equal(h.started.length, failed + 1, `no retry before ${wait} ms`)
    h.tick(1)
    assert.equal(h.started.length, failed + 2, `a retry at ${wait} ms`)
  }
  assert.deepEqual(h.startedAt, [1001, 1031, 1091, 1191, 1291])
  assert.equal(h.delayedErrors.length, 4, 'each failed delayed write is reported')
  await h.finish()
  assert.deepEqual(h.durable, [1])
  h.tick(10_000)
  assert.equal(h.started.length, 5, 'no retry once the data is durable')
})

test('stop() cancels both the retry timer and the debounce deadline, and keeps the data', async (t) => {
  const h = harness(t, { retry: { initialMs: 30, maxMs: 100 } })
  h.scheduler.schedule(1, 0)
  h.tick(1)
  await h.finish(new Error('disk full')) // arms the retry timer for the kept data
  h.scheduler.schedule(2, 50) // and the debounce deadline for newer data
  h.scheduler.stop()
  h.tick(10_000)
  assert.deepEqual(h.started, [1], 'neither timer fired after stop()')
  assert.equal(h.scheduler.hasPending, true, 'the data is kept for a final flush')
})

test('unsavedSince is the time of the oldest request not yet durable: kept through a failed write and a newer request, cleared once written', async (t) => {
  const h = harness(t)
  assert.equal(h.scheduler.unsavedSince, undefined)
  h.scheduler.schedule(1, 60_000)
  assert.equal(h.scheduler.unsavedSince, 1000)
  h.tick(5)
  h.scheduler.schedule(2, 60_000)
  assert.equal(h.scheduler.unsavedSince, 1000, 'a newer request does not make older unsaved data younger')
  const flushing = h.scheduler.flush()
  await settle()
  assert.deepEqual(h.started, [2])
  h.tick(5)
  h.scheduler.schedule(3, 60_000) // made during the write that is about to fail
  assert.equal(h.scheduler.unsavedSince, 1000, 'the running write\'s data is older than the pending data')
  const failed = assert.rejects(flushing, /write of 2 failed/)
  await h.finish(new Error('write of 2 failed'))
  await failed
  assert.equal(h.scheduler.unsavedSince, 1000, 'the failed write\'s data is still the oldest unsaved')
  const again = h.scheduler.flush()
  await h.finish()
  await again
  assert.deepEqual(h.durable, [3])
  assert.equal(h.scheduler.unsavedSince, undefined)
})
