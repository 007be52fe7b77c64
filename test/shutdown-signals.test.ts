import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { codecs, ShutdownRegistry, Store, WriterPool } from '../src/index.js'
import type { Behaviour } from './fixtures/bad-codecs.js'
import { fakeRegister, mockClock, recordingLogger, tempDir } from './helpers.js'
import { fixture } from './rel-helpers.js'

const dir = tempDir('offload-store-shutdown-')
let n = 0

interface Line { level?: string, message?: string, ready?: boolean, [key: string]: unknown }

/** Starts the signal child and returns a way to wait for its lines and its exit. */
function start (timeoutMs: number, hang: boolean, clock: 'real' | 'mock-clock' = 'real'): { where: string, next: (predicate: (line: Line) => boolean) => Promise<Line>, lines: Line[], exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, kill: (signal: NodeJS.Signals) => void } {
  const where = join(dir, `c${n++}`)
  mkdirSync(where)
  const child = spawn(process.execPath, [fixture('signal-child.js'), where, String(timeoutMs), hang ? 'hang' : 'nohang', clock], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Line[] = []
  const waiters: Array<{ predicate: (line: Line) => boolean, resolve: (line: Line) => void }> = []
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Line
    lines.push(line)
    for (const waiter of waiters.splice(0)) {
      if (waiter.predicate(line)) waiter.resolve(line)
      else waiters.push(waiter)
    }
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
  return {
    where,
    lines,
    exited,
    kill: (signal) => { child.kill(signal) },
    next: async (predicate) => {
      const seen = lines.find(predicate)
      if (seen !== undefined) return seen
      return await new Promise((resolve) => waiters.push({ predicate, resolve }))
    }
  }
}

const flushedFiles = (where: string): unknown[] => [0, 1, 2].map((i) => JSON.parse(readFileSync(join(where, `s${i}.json`), 'utf8')) as unknown)

test('SIGTERM flushes every store, then exits with 143 (128 + 15)', { timeout: 60_000 }, async () => {
  const child = start(10_000, false)
  await child.next((line) => line.ready === true)
  child.kill('SIGTERM')
  assert.deepEqual(await child.exited, { code: 143, signal: null })
  assert.deepEqual(flushedFiles(child.where), [0, 1, 2].map((i) => ({ i, flushed: true })))
})

test('SIGINT flushes every store, then exits with 130 (128 + 2)', { timeout: 60_000 }, async () => {
  const child = start(10_000, false)
  await child.next((line) => line.ready === true)
  child.kill('SIGINT')
  assert.deepEqual(await child.exited, { code: 130, signal: null })
  assert.deepEqual(flushedFiles(child.where), [0, 1, 2].map((i) => ({ i, flushed: true })))
})

test('a flush that hangs is cut off after timeoutMs: the log names the store that did not finish, the others are written', { timeout: 60_000 }, async () => {
  const child = start(2000, true, 'mock-clock') // the timeout runs out once the other stores are written
  await child.next((line) => line.ready === true)
  child.kill('SIGTERM')
  assert.deepEqual(await child.exited, { code: 143, signal: null })
  const report = child.lines.find((line) => line.level === 'error' && /did not finish/.test(line.message ?? ''))
  assert.ok(report !== undefined, JSON.stringify(child.lines))
  assert.match(report.message ?? '', /stuck-store/)
  assert.doesNotMatch(report.message ?? '', /store-[012]/)
  assert.match(report.message ?? '', /1 of 4 stores did not finish/)
  assert.deepEqual(flushedFiles(child.where), [0, 1, 2].map((i) => ({ i, flushed: true })))
  assert.equal(existsSync(join(child.where, 'stuck.json')), false)
})

test('a second signal during the flush exits at once, without waiting for the timeout', { timeout: 60_000 }, async () => {
  const child = start(60_000, true)
  await child.next((line) => line.ready === true)
  child.kill('SIGTERM')
  await child.next((line) => /flushing every store/.test(line.message ?? ''))
  child.kill('SIGINT')
  // Had it waited for the hung flush, it would run for 60 s and the test would time out.
  assert.deepEqual(await child.exited, { code: 130, signal: null })
  assert.ok(child.lines.some((line) => /second signal/.test(line.message ?? '')))
})

test('installSignalHandlers() is opt-in and its returned function removes the handlers', () => {
  const before = process.listenerCount('SIGTERM')
  const registry = new ShutdownRegistry()
  assert.equal(process.listenerCount('SIGTERM'), before)
  const uninstall = registry.installSignalHandlers({ exit: () => {} })
  assert.equal(process.listenerCount('SIGTERM'), before + 1)
  assert.equal(process.listenerCount('SIGINT'), before + 1)
  uninstall()
  assert.equal(process.listenerCount('SIGTERM'), before)
})

const bad = codecs.module<{ behave: Behaviour }>(new URL('./fixtures/bad-codecs.js', import.meta.url))

test('pool.close() with a write that never finishes: past closeTimeout it rejects ERR_STORE_CLOSED, never unhandled; the previous file is intact', { timeout: 60_000 }, async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.after(() => { process.off('unhandledRejection', onUnhandled) })
  const clock = mockClock(t) // closeTimeout runs out when ticked, not after 200 ms of real time
  const pool = new WriterPool({ maxThreads: 1, writeTimeout: 0, closeTimeout: 200 })
  const path = join(dir, `close${n++}.json`)
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, pool, codec: bad, logger })
  await store.save({ behave: 'ok' })
  const saving = store.save({ behave: 'spin' })
  const other = new Store({ path: join(dir, `close${n++}.json`), shutdownRegister: fakeRegister().register, pool, codec: bad, logger })
  other.delaySave(() => ({ behave: 'spin' }), 0) // a delayed write: its failure is logged, not thrown
  const logged = logger.next('error')
  clock.tick(1) // its deadline: the write queues behind the spinning one
  let closed = false
  const closing = pool.close().then(() => { closed = true })
  clock.tick(199)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(closed, false, 'close() waits for the running writes until closeTimeout')
  clock.tick(1)
  await closing
  await assert.rejects(saving, { code: 'ERR_STORE_CLOSED' })
  assert.match(String((await logged).fields['err']), /closed/)
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { behave: 'ok' })
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(unhandled, [])
})

test('pool.close() lets queued writes (more than its threads) finish before it resolves', { timeout: 60_000 }, async () => {
  const pool = new WriterPool({ maxThreads: 1, closeTimeout: 30_000 })
  const stores = Array.from({ length: 5 }, () => new Store({ path: join(dir, `q${n++}.json`), shutdownRegister: fakeRegister().register, pool }))
  const saves = stores.map(async (store, i) => { await store.save({ i }) })
  await new Promise((resolve) => setImmediate(resolve))
  await pool.close()
  await Promise.all(saves)
  stores.forEach((store, i) => { assert.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')), { i }) })
})
