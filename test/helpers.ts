import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import diagnosticsChannel from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { after, type TestContext } from 'node:test'
import type { Logger } from '../src/index.js'
import type { RunResult } from '../bench/run-result.js'

/** A logger that drops everything: for tests whose subject is not what a store logs. */
export const quiet: Logger = { error: () => {}, warn: () => {}, debug: () => {} }

/** A fresh directory under the OS temp dir, removed when the test file ends. */
export function tempDir (prefix = 'offload-store-'): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)))
  after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** A logger that records every call, for asserting on what a store logged. */
export interface RecordingLogger extends Logger {
  readonly lines: Array<{ level: 'error' | 'warn' | 'debug', fields: Record<string, unknown>, message: string }>
  /** Resolves at the next line of `level`. */
  next: (level: 'error' | 'warn' | 'debug') => Promise<{ fields: Record<string, unknown>, message: string }>
}

/** Builds a {@link RecordingLogger}. */
export function recordingLogger (): RecordingLogger {
  const lines: RecordingLogger['lines'] = []
  const waiters: Array<{ level: string, resolve: (line: { fields: Record<string, unknown>, message: string }) => void }> = []
  const log = (level: 'error' | 'warn' | 'debug') => (fields: object, message: string): void => {
    const line = { level, fields: fields as Record<string, unknown>, message }
    lines.push(line)
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i]
      if (waiter !== undefined && waiter.level === level) { waiters.splice(i, 1); waiter.resolve(line) }
    }
  }
  return {
    lines,
    error: log('error'),
    warn: log('warn'),
    debug: log('debug'),
    next: async (level) => await new Promise((resolve) => { waiters.push({ level, resolve }) })
  }
}

/** Resolves with the next message on a diagnostics channel that matches `filter`. */
export async function nextMessage<M> (name: string, filter: (message: M) => boolean = () => true): Promise<M> {
  return await new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!filter(message as M)) return
      diagnosticsChannel.unsubscribe(name, onMessage)
      resolve(message as M)
    }
    diagnosticsChannel.subscribe(name, onMessage)
  })
}

/** Counts messages on a diagnostics channel for one path until `stop()` is called. */
export function countMessages (name: string, path: string): { readonly count: number, stop: () => void } {
  let count = 0
  const onMessage = (message: unknown): void => {
    if ((message as { path?: string }).path === path) count++
  }
  diagnosticsChannel.subscribe(name, onMessage)
  return {
    get count () { return count },
    stop: () => { diagnosticsChannel.unsubscribe(name, onMessage) }
  }
}

/** A shutdown register that records what it was given. */
export function fakeRegister (): { readonly flushes: Array<() => Promise<void>>, register: (flush: () => Promise<void>) => void } {
  const flushes: Array<() => Promise<void>> = []
  return { flushes, register: (flush) => { flushes.push(flush) } }
}

/**
 * Holds the event loop open until the returned function is called. Retry timers and idle workers
 * are unref'd by design, so a test that only awaits them would otherwise end early.
 */
export function keepAlive (): () => void {
  const timer = setInterval(() => {}, 1000)
  return () => { clearInterval(timer) }
}

/** A mocked clock: time moves only when the test says so. */
export interface MockClock {
  /** Moves time `ms` forward one millisecond at a time, so each timer runs at its own due time. */
  tick: (ms: number) => void
  /** Runs every armed timer, and those they arm, however far ahead. */
  runAll: () => void
}

/**
 * Puts setTimeout, Date and performance.now on node:test's mocked clock until the test ends, so
 * the debounce deadlines and retry timers of the stores it makes fire only when it ticks.
 * setImmediate, I/O and worker threads stay real: writes still run, in no time on this clock.
 */
export function mockClock (t: TestContext): MockClock {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 })
  // mock.timers leaves performance.now alone, and the stores read it: it follows the mocked Date
  // from where the real clock stood, so no interval measured across the switch is negative. A
  // whole number, so deadlines computed from it are exact and fire on the tick they are due.
  const base = Math.ceil(performance.now())
  t.mock.method(performance, 'now', () => base + Date.now())
  return {
    tick: (ms) => { for (let i = 0; i < ms; i++) t.mock.timers.tick(1) },
    runAll: () => { t.mock.timers.runAll() }
  }
}

/**
 * Resolves when the next write of `path` has ended and what its end set going (the store's own
 * bookkeeping, the saves it satisfied) has run; rejects with its error if it fails instead.
 */
export async function writeSettled (path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const stop = (): void => {
      diagnosticsChannel.unsubscribe('offload-store:write:end', onEnd)
      diagnosticsChannel.unsubscribe('offload-store:write:error', onError)
    }
    const onEnd = (message: unknown): void => {
      if ((message as { path?: string }).path !== path) return
      stop()
      // The event is published before the write's promise settles: setImmediate runs after that
      // whole chain of continuations (it is never mocked by mockClock).
      setImmediate(resolve)
    }
    const onError = (message: unknown): void => {
      if ((message as { path?: string }).path !== path) return
      stop()
      const { error } = message as { error: unknown }
      setImmediate(() => { reject(error) })
    }
    diagnosticsChannel.subscribe('offload-store:write:end', onEnd)
    diagnosticsChannel.subscribe('offload-store:write:error', onError)
  })
}

/** A bench run result with nothing measured, plus `overrides`: what report and gate tests build on. */
export function runResultWith (overrides: Partial<RunResult> = {}): RunResult {
  return {
    schemaVersion: 2,
    scope: 'full',
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:01:00.000Z',
    machine: { cpuModel: 'test', cores: 2, totalMemoryMB: 1, platform: 'linux', osRelease: '1', arch: 'x64', node: 'v20.20.0' },
    loopLatency: [],
    memory: [],
    ...overrides
  }
}

/**
 * Runs `work` while an `intervalMs` interval ticks; returns the longest gap between ticks (or
 * from the last tick to the end of `work`), in ms. `settleMs` of real time on each side lets the
 * gaps measured be the ones `work` causes; nothing is decided by those waits, callers compare
 * gaps taken in the same process.
 */
export async function longestGap (work: () => Promise<unknown> | unknown, intervalMs = 5, settleMs = 0): Promise<number> {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last)
    last = now
  }, intervalMs)
  try {
    if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs))
    await work()
    longest = Math.max(longest, performance.now() - last)
    if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs))
    return longest
  } finally {
    clearInterval(timer)
  }
}
