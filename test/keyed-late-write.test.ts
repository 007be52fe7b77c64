import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { cannotStrace, fixture, lastJson, run } from './rel-helpers.js'

// A KeyedStore's write that timed out had its pinned worker terminated, but a thread inside a
// system call finishes that call first: strace holds one call of the worker's past writeTimeout to
// show where it then lands. Injections are counted per thread: `when=2` holds the worker's second
// such call (v1's; v0 made the first), and the new worker that replaces it has its first not held.

const dir = tempDir('offload-store-keyed-late-')

interface Outcome { v1: string, v2: string, closed: string, lockKept: boolean, allExited: boolean, logged: string[] }

async function lateWrite (name: string, mode: 'save' | 'close', journal: boolean, injections: readonly string[], writeTimeout: number): Promise<{ outcome: Outcome, path: string }> {
  const where = join(dir, name)
  mkdirSync(where)
  const path = join(where, 'map.json')
  const args = injections.flatMap((injection) => ['-e', `inject=${injection}`])
  const result = await run('strace', ['-f', '-o', '/dev/null', ...args, process.execPath, fixture('keyed-late-write-child.js'), path, String(writeTimeout), mode, journal ? 'journal' : 'plain'])
  return { outcome: lastJson<Outcome>(result), path }
}

async function reload (path: string, journal: boolean): Promise<Record<string, number>> {
  const store = new KeyedStore<string, number>({ path, shutdownRegister: fakeRegister().register, journal })
  try {
    return Object.fromEntries(await store.load())
  } finally {
    await store.close()
  }
}

test('a KeyedStore write that timed out mid-rename never lands over a newer acknowledged save', { skip: cannotStrace }, async () => {
  // v1's rename is held 3 s (writeTimeout 2 s). Each thread's first unlink is held 1.5 s: the new
  // worker's removal of temp files left for the target (which would take v1's temp file away
  // before its rename) then comes after v1's rename is due.
  const { outcome, path } = await lateWrite('rename', 'save', false, ['rename,renameat,renameat2:delay_enter=3000000:when=2', 'unlink,unlinkat:delay_enter=1500000:when=1'], 2000)
  assert.equal(outcome.v1, 'ERR_STORE_WRITE', 'v1 times out')
  assert.equal(outcome.v2, 'acknowledged')
  assert.equal(outcome.allExited, true, 'every worker thread exited before the files were read')
  assert.deepEqual(await reload(path, false), { v: 2 }, 'the file holds the last acknowledged save')
})

test('a journal append that timed out mid-write never lands over a newer acknowledged save', { skip: cannotStrace }, async () => {
  // The worker's first pwrite is the new journal's header, its second v1's record: held 3 s
  // (writeTimeout 2 s). A new worker that appended v2 at once would put it where v1's record then lands.
  const { outcome, path } = await lateWrite('journal', 'save', true, ['pwrite64:delay_enter=3000000:when=2'], 2000)
  assert.equal(outcome.v1, 'ERR_STORE_WRITE', 'v1 times out')
  assert.equal(outcome.v2, 'acknowledged')
  assert.equal(outcome.allExited, true, 'every worker thread exited before the files were read')
  assert.deepEqual(await reload(path, true), { v: 2 }, 'the file and its journal hold the last acknowledged save')
})

test('KeyedStore close() keeps the lock while the thread of a write that timed out mid-rename is still alive, and says so', { skip: cannotStrace }, async () => {
  // v1's rename is held 6 s (writeTimeout 1 s): close()'s flush of the kept v1 and its own wait
  // for the thread each give up after writeTimeout, before the rename can land.
  const { outcome } = await lateWrite('close', 'close', false, ['rename,renameat,renameat2:delay_enter=6000000:when=2'], 1000)
  assert.equal(outcome.v1, 'ERR_STORE_WRITE', 'v1 times out')
  assert.equal(outcome.closed, 'ERR_STORE_WRITE', 'the flush in close() could not start')
  assert.equal(outcome.lockKept, true, 'the lock file is still there when close() settles')
  assert.ok(outcome.logged.some((message) => /lock is kept/.test(message)), outcome.logged.join('\n'))
})
