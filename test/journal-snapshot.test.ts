import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { KeyedOp } from '../src/protocol.js'
import { recordingLogger, tempDir } from './helpers.js'
import { journalFor, nextRecordFor, openJournaled } from './journal-helpers.js'

// A journal extends one exact snapshot. Which mismatches are a crash mid-compaction (ignore the
// journal: the snapshot already holds it) and which would load a wrong state (refuse).

const dir = tempDir()
let n = 0

function where (): string {
  const folder = join(dir, `s${n++}`)
  mkdirSync(folder)
  return join(folder, 'map.json')
}

const RECORDS: KeyedOp[][] = [[['a', 1]], [['gone'], ['b', 2]]]

async function refused (path: string): Promise<void> {
  const store = openJournaled<number>(path)
  await assert.rejects(store.load(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORE_DECODE')
    assert.match(err.message, /snapshot/)
    return true
  })
  await store.close()
}

test('an older snapshot put back under a journal of a newer one is refused with ERR_STORE_DECODE', async () => {
  const path = where()
  writeFileSync(path, '{"gone":0,"old":true}')
  writeFileSync(`${path}.journal`, journalFor('{"gone":0,"new":true}', RECORDS))
  await refused(path)
})

test('the same data re-indented under its journal is refused with ERR_STORE_DECODE', async () => {
  const path = where()
  writeFileSync(path, '{\n  "gone": 0\n}')
  writeFileSync(`${path}.journal`, journalFor('{"gone":0}', RECORDS))
  await refused(path)
})

test('a journal with changes whose snapshot was deleted is refused, not loaded as empty', async () => {
  const path = where()
  writeFileSync(`${path}.journal`, journalFor('{"gone":0}', RECORDS))
  await refused(path)
  assert.equal(existsSync(`${path}.journal`), true)
})

test("with onCorrupt: 'quarantine', a journal of another snapshot moves aside with the snapshot, and an error is logged", async () => {
  const path = where()
  writeFileSync(path, '{"gone":0,"old":true}')
  const journal = journalFor('{"gone":0,"new":true}', RECORDS)
  writeFileSync(`${path}.journal`, journal)
  const logger = recordingLogger()
  const store = openJournaled<number>(path, { onCorrupt: 'quarantine', logger })
  assert.equal((await store.load()).size, 0)
  await store.close()
  const moved = readdirSync(join(path, '..')).filter((f) => f.includes('.corrupt.'))
  assert.equal(moved.length, 2)
  const movedJournal = moved.find((f) => f.startsWith('map.json.journal.'))
  assert.ok(movedJournal !== undefined)
  assert.deepEqual(readFileSync(join(path, '..', movedJournal)), journal)
  assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1)
})

test('a header-only journal of another snapshot holds no change: the snapshot loads alone, with a warning', async () => {
  const path = where()
  writeFileSync(path, '{"a":1}')
  writeFileSync(`${path}.journal`, journalFor('{"a":0}', []))
  const logger = recordingLogger()
  const store = openJournaled<number>(path, { logger })
  assert.deepEqual(Object.fromEntries(await store.load()), { a: 1 })
  store.set('b', 2)
  await store.saveNow()
  await store.close()
  assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 1)
  const reloaded = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await reloaded.load()), { a: 1, b: 2 })
  await reloaded.close()
})

test('compactions interrupted at every step reload the acknowledged state: a journal that names the snapshot on disk as its successor is ignored', async () => {
  // Drive real compactions and copy the files at each step boundary the store passes through.
  const path = where()
  const store = openJournaled<number>(path, { journal: { compactBytes: 1 } })
  await store.load()
  store.set('a', 1)
  await store.saveNow() // first snapshot
  store.set('b', 2)
  await store.saveNow() // appended
  const journalBefore = readFileSync(`${path}.journal`)
  const snapshotBefore = readFileSync(path)
  store.set('c', 3)
  await store.saveNow() // compaction: journal over the limit
  await store.close()
  const snapshotAfter = readFileSync(path)
  assert.equal(snapshotAfter.toString(), '{"a":1,"b":2,"c":3}')
  // The crash between the new snapshot's rename and the journal's reset: new snapshot, old journal
  // plus the record naming its successor (what the store appends before the rename).
  rmSync(`${path}.journal`)
  writeFileSync(`${path}.journal`, Buffer.concat([journalBefore, nextRecordFor(snapshotAfter.toString())]))
  const reloaded = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await reloaded.load()), { a: 1, b: 2, c: 3 })
  await reloaded.close()
  // The crash before the rename: the old snapshot, the journal with its successor named; replayed.
  writeFileSync(path, snapshotBefore)
  writeFileSync(`${path}.journal`, Buffer.concat([journalBefore, nextRecordFor(snapshotAfter.toString())]))
  const replayed = openJournaled<number>(path)
  assert.deepEqual(Object.fromEntries(await replayed.load()), { a: 1, b: 2 })
  await replayed.close()
})
