import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { cannotStrace, fixture, lastJson, run } from './rel-helpers.js'

// A write that timed out had its worker terminated, but a thread inside a system call finishes
// that call first: strace holds a worker's rename past writeTimeout to show where it then lands.

const dir = tempDir('offload-store-late-')

interface Outcome { v1: string, v2: string, closed: string, lockKept: boolean, tempsLeft: number, logged: string[] }

// Injections are counted per thread: `when=2` on rename holds each worker's second rename, which
// is v1's on the first worker (its first is v0's); a later write runs on a new worker, whose
// first rename is not held.
async function lateWrite (mode: 'save' | 'close', injections: readonly string[], writeTimeout: number): Promise<{ outcome: Outcome, path: string }> {
  const where = join(dir, mode)
  mkdirSync(where)
  const path = join(where, 'state.json')
  const args = injections.flatMap((injection) => ['-e', `inject=${injection}`])
  const result = await run('strace', ['-f', '-o', '/dev/null', ...args, process.execPath, fixture('late-write-child.js'), path, String(writeTimeout), mode])
  return { outcome: lastJson<Outcome>(result), path }
}

test('a write that timed out mid-rename never lands over a newer acknowledged save', { skip: cannotStrace }, async () => {
  // v1's rename is held 3 s past its start (writeTimeout 2 s). Each thread's first unlink is held
  // 1.5 s: the new worker's removal of temp files left for the target (which would take v1's temp
  // file away before its rename) then comes after v1's rename is due.
  const { outcome, path } = await lateWrite('save', ['rename,renameat,renameat2:delay_enter=3000000:when=2', 'unlink,unlinkat:delay_enter=1500000:when=1'], 2000)
  assert.equal(outcome.v1, 'ERR_STORE_WRITE', 'v1 times out')
  assert.equal(outcome.v2, 'acknowledged')
  assert.equal(outcome.tempsLeft, 0)
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 }, 'the file holds the last acknowledged save')
})

test('close() keeps the lock while the thread of a write that timed out mid-rename is still alive, and says so', { skip: cannotStrace }, async () => {
  // v1's rename is held 6 s (writeTimeout 1 s): close()'s flush of the kept v1 and its own wait
  // for the thread each give up after writeTimeout, before the rename can land.
  const { outcome } = await lateWrite('close', ['rename,renameat,renameat2:delay_enter=6000000:when=2'], 1000)
  assert.equal(outcome.v1, 'ERR_STORE_WRITE', 'v1 times out')
  assert.equal(outcome.closed, 'ERR_STORE_WRITE', 'the flush in close() could not start')
  assert.equal(outcome.lockKept, true, 'the lock file is still there when close() settles')
  assert.ok(outcome.logged.some((message) => /lock is kept/.test(message)), outcome.logged.join('\n'))
})
