import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { type TestContext, test } from 'node:test'
import { tempDir } from './helpers.js'
import { fixture } from './rel-helpers.js'

const dir = tempDir('offload-store-exit-')
let n = 0

interface Line { logger?: string, level?: string, message?: string, store?: string, path?: string, pendingMs?: number, signal?: string, ready?: boolean, handled?: string, [key: string]: unknown }
interface Child {
  readonly where: string
  readonly lines: Line[]
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly ready: Promise<void>
  readonly kill: (signal: NodeJS.Signals) => void
}

/** Starts exit-child on `scenario`, collecting its JSON lines; killed when the test ends, should it hang. */
function start (t: TestContext, scenario: string): Child {
  const where = join(dir, `c${n++}`)
  mkdirSync(where)
  const child = spawn(process.execPath, [fixture('exit-child.js'), where, scenario], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const lines: Line[] = []
  let onReady = (): void => {}
  const ready = new Promise<void>((resolve) => { onReady = resolve })
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Line
    lines.push(line)
    if (line.ready === true) onReady()
  })
  // 'close', not 'exit': every line the child wrote has been read by then.
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => { resolve({ code, signal }) }))
  return { where, lines, exited, ready, kill: (signal) => { child.kill(signal) } }
}

const unsavedLines = (lines: readonly Line[]): Line[] => lines.filter((line) => line.level === 'error' && /not (been )?written/.test(line.message ?? ''))
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

test('process.exit() with delaySave() data pending logs each store, through its own logger, with name, path and how long it was pending', { timeout: 60_000 }, async (t) => {
  const child = start(t, 'exit')
  assert.deepEqual(await child.exited, { code: 0, signal: null })
  const unsaved = unsavedLines(child.lines)
  assert.deepEqual(unsaved.map((line) => [line.logger, line.store, line.path]), [
    ['logger-a', 'a', join(child.where, 'a.json')],
    ['logger-b', 'b', join(child.where, 'b.json')]
  ], JSON.stringify(child.lines))
  for (const line of unsaved) assert.ok(typeof line.pendingMs === 'number' && line.pendingMs >= 0, JSON.stringify(line))
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} with no handler logs each store with unsaved data, then the signal ends the process as it would have`, { timeout: 60_000 }, async (t) => {
    const child = start(t, 'signal')
    await child.ready
    child.kill(signal)
    // Killed by the signal itself (a shell reports 128 + n), exactly as without the library.
    assert.deepEqual(await child.exited, { code: null, signal })
    const unsaved = unsavedLines(child.lines)
    assert.deepEqual(unsaved.map((line) => [line.logger, line.store, line.signal]), [['logger-a', 'a', signal], ['logger-b', 'b', signal]], JSON.stringify(child.lines))
  })
}

test('a SIGTERM handler of the application\'s own stays in charge: no re-raise, and its process.exit() still logs what was not written', { timeout: 60_000 }, async (t) => {
  const child = start(t, 'own-handler')
  await child.ready
  child.kill('SIGTERM')
  assert.deepEqual(await child.exited, { code: 0, signal: null })
  assert.ok(child.lines.some((line) => line.handled === 'SIGTERM'))
  assert.deepEqual(unsavedLines(child.lines).map((line) => line.store), ['a', 'b'], JSON.stringify(child.lines))
})

test('a script whose Store has delaySave(fn, 1 h) pending ends when its work is done, and the data is written first', { timeout: 60_000 }, async (t) => {
  const child = start(t, 'idle-store')
  assert.deepEqual(await child.exited, { code: 0, signal: null })
  assert.deepEqual(readJson(join(child.where, 'a.json')), { a: 1 })
  assert.deepEqual(child.lines.filter((line) => line.level === 'error'), [])
})

test('a script whose KeyedStore has set() pending under delayMs 1 h ends when its work is done, and the changes are written first', { timeout: 60_000 }, async (t) => {
  const child = start(t, 'idle-keyed')
  assert.deepEqual(await child.exited, { code: 0, signal: null })
  assert.deepEqual(readJson(join(child.where, 'k.json')), { a: 1, b: 2 })
  assert.deepEqual(child.lines.filter((line) => line.level === 'error'), [])
})

test('when the write at the end of a script fails, the failure and the unsaved data are logged, and the process still ends', { timeout: 60_000 }, async (t) => {
  const child = start(t, 'idle-failing')
  assert.deepEqual(await child.exited, { code: 0, signal: null })
  const errors = child.lines.filter((line) => line.level === 'error')
  assert.ok(errors.some((line) => line.store === 'bad' && /ENOTDIR|EEXIST|not a directory/i.test(JSON.stringify(line))), JSON.stringify(child.lines))
  assert.deepEqual(unsavedLines(child.lines).map((line) => line.store), ['bad'], JSON.stringify(child.lines))
})
