import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import diagnosticsChannel from 'node:diagnostics_channel'
import { after } from 'node:test'
import type { Logger } from '../src/index.js'

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
