import assert from 'node:assert/strict'
import { mock, test } from 'node:test'
import { DebounceTimer } from '../src/debounce.js'

// Drives a DebounceTimer with mocked timers and Date, one millisecond per tick so each callback
// sees the exact time it was due at, and counts the timers it arms through its injected setTimeout.
function harness (): { fired: number[], timer: DebounceTimer, tick: (ms: number) => void, timersCreated: () => number, restore: () => void } {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 })
  let created = 0
  const fired: number[] = []
  const timer = new DebounceTimer(() => { fired.push(Date.now()) }, {
    now: () => Date.now(),
    setTimeout: (callback, delayMs) => { created++; return setTimeout(callback, delayMs) }
  })
  return {
    fired,
    timer,
    tick: (ms) => { for (let i = 0; i < ms; i++) mock.timers.tick(1) },
    timersCreated: () => created,
    restore: () => { mock.timers.reset() }
  }
}

test('fires once at now + delay', (t) => {
  const h = harness(); t.after(h.restore)
  h.timer.set(100)
  h.tick(99)
  assert.deepEqual(h.fired, [])
  h.tick(1)
  assert.deepEqual(h.fired, [100])
  h.tick(500)
  assert.deepEqual(h.fired, [100])
})

test('a later call moves the deadline later (the latest call wins)', (t) => {
  const h = harness(); t.after(h.restore)
  h.timer.set(100)
  h.tick(50)
  h.timer.set(100)
  h.tick(60)
  assert.deepEqual(h.fired, [], 'the first deadline (100) must not fire')
  h.tick(40)
  assert.deepEqual(h.fired, [150])
})

test('a later call moves the deadline earlier (the latest call wins)', (t) => {
  const h = harness(); t.after(h.restore)
  h.timer.set(1000)
  h.tick(10)
  h.timer.set(20)
  h.tick(20)
  assert.deepEqual(h.fired, [30])
  h.tick(2000)
  assert.deepEqual(h.fired, [30], 'the abandoned later deadline must not fire')
})

test('repeated calls create at most one timer per delay period, not one per call', (t) => {
  const h = harness(); t.after(h.restore)
  for (let i = 0; i < 1000; i++) { h.timer.set(100); h.tick(1) }
  // 1000 calls over 1000 ms with a 100 ms delay: the armed timer fires every 100 ms, finds the
  // deadline moved, and re-arms once for the rest. One timer per call would be 1000.
  assert.ok(h.timersCreated() <= 11, `timers created: ${h.timersCreated()}`)
  assert.deepEqual(h.fired, [])
  h.tick(100)
  assert.deepEqual(h.fired, [1099])
})

test('cancel() stops a pending deadline', (t) => {
  const h = harness(); t.after(h.restore)
  h.timer.set(10)
  assert.equal(h.timer.armed, true)
  h.timer.cancel()
  assert.equal(h.timer.armed, false)
  h.tick(100)
  assert.deepEqual(h.fired, [])
})

test('an armed timer does not keep the event loop alive (its timer is unref\'d)', (t) => {
  // Counts ref'd timers only: an unref'd one does not hold the loop, so it is not listed.
  const refTimers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
  const before = refTimers()
  const timer = new DebounceTimer(() => {})
  t.after(() => { timer.cancel() })
  timer.set(3_600_000)
  assert.equal(timer.armed, true)
  assert.equal(refTimers(), before)
})
