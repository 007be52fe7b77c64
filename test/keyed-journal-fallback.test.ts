import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, renameSync, rmdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { encodeJournalStart, snapshotIdOf } from '../src/journal-format.js'
import { recordingLogger, tempDir } from './helpers.js'
import { openJournaled } from './journal-helpers.js'

// A journal the worker cannot open for appending (here a directory stands at its path for one
// save): no later change may go to that journal before the whole state is written as a snapshot.

const dir = tempDir('offload-store-journal-fallback-')

/** A file with a journal beside it holding one appended save, as a run of the store left them. */
async function journaledFile (name: string): Promise<string> {
  const where = join(dir, name)
  mkdirSync(where)
  const path = join(where, 'map.json')
  const store = openJournaled<string>(path)
  await store.load()
  store.set('a', 'first')
  await store.saveNow() // the first snapshot, and a journal for it
  store.set('b', 'appended')
  await store.saveNow()
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), '{"a":"first"}', 'b went to the journal')
  return path
}

/** Runs `during` while a directory stands at the journal's path, then puts the journal back. */
async function withJournalUnopenable<T> (path: string, during: () => Promise<T>): Promise<T> {
  const journal = `${path}.journal`
  renameSync(journal, `${journal}.aside`)
  mkdirSync(journal)
  try {
    return await during()
  } finally {
    rmdirSync(journal)
    renameSync(`${journal}.aside`, journal)
  }
}

test('after the journal could not be opened, the next write is a snapshot and the journal starts over', async () => {
  const path = await journaledFile('next-snapshot')
  const store = openJournaled<string>(path)
  await store.load()
  store.set('c', 'while unopenable')
  await withJournalUnopenable(path, async () => {
    await assert.rejects(store.saveNow(), (err: Error & { code?: string, cause?: { code?: string } }) => {
      assert.equal(err.code, 'ERR_STORE_WRITE')
      assert.equal(err.cause?.code, 'EISDIR')
      return true
    })
  })
  store.set('d', 'after')
  await store.saveNow()
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { a: 'first', b: 'appended', c: 'while unopenable', d: 'after' }, 'the write after the failure was a snapshot')
  const fresh = encodeJournalStart(snapshotIdOf(readFileSync(path))).byteLength
  assert.equal(statSync(`${path}.journal`).size, fresh, 'the journal started over for the new snapshot')
  store.set('e', 'appended again')
  await store.saveNow()
  await store.close()
  const reloaded = openJournaled<string>(path)
  assert.deepEqual(Object.fromEntries(await reloaded.load()), { a: 'first', b: 'appended', c: 'while unopenable', d: 'after', e: 'appended again' })
  await reloaded.close()
})

test('a delayed write that could not open the journal logs that its changes are kept and the next write is a snapshot', async () => {
  const path = await journaledFile('logged')
  const logger = recordingLogger()
  const store = openJournaled<string>(path, { logger, delayMs: 0, retry: false })
  await store.load()
  const line = await withJournalUnopenable(path, async () => {
    const logged = logger.next('error')
    store.set('c', 'while unopenable')
    return await logged
  })
  const err = line.fields['err'] as Error
  assert.match(line.message, /kept for a retry/)
  assert.match(err.message, /journal could not be opened/)
  assert.match(err.message, /next write rewrites the whole file/)
  await store.saveNow()
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { a: 'first', b: 'appended', c: 'while unopenable' }, 'the next write was a snapshot')
  await store.close()
})
