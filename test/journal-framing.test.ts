import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { KeyedStoreOptions } from '../src/index.js'
import type { KeyedOp } from '../src/protocol.js'
import { recordingLogger, tempDir } from './helpers.js'
import { journalFor, openJournaled, recordSpans } from './journal-helpers.js'

// What load() makes of a journal whose bytes were damaged or left short by a crash. Only a torn
// tail may be dropped silently; any other damage is refused, and a load never writes.

const dir = tempDir()
let n = 0

const SNAPSHOT = '{"keep":0}'
// Acknowledged: a, b and c set, then b deleted, then d set.
const RECORDS: KeyedOp[][] = [[['a', 1], ['b', 2]], [['c', 3], ['b']], [['d', 4]]]
const ACKED = { keep: 0, a: 1, c: 3, d: 4 }

function plant (journal: Buffer): string {
  const where = join(dir, `f${n++}`)
  mkdirSync(where)
  const path = join(where, 'map.json')
  writeFileSync(path, SNAPSHOT)
  writeFileSync(`${path}.journal`, journal)
  return path
}

async function loadOutcome (path: string, extra: Partial<KeyedStoreOptions<number>> = {}): Promise<{ state?: Record<string, number>, code?: string | undefined, message?: string }> {
  const store = openJournaled<number>(path, extra)
  try {
    return { state: Object.fromEntries(await store.load()) }
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message }
  } finally {
    await store.close()
  }
}

function withLength (journal: Buffer, record: number, length: (old: number) => number): Buffer {
  const copy = Buffer.from(journal)
  const span = recordSpans(copy)[record]
  assert.ok(span !== undefined)
  copy.writeUInt32LE(length(copy.readUInt32LE(span.length)) >>> 0, span.length)
  return copy
}

test('a middle record whose length field has a flipped high bit is refused with ERR_STORE_DECODE', async () => {
  for (const bit of [31, 24, 16, 8]) {
    const path = plant(withLength(journalFor(SNAPSHOT, RECORDS), 2, (old) => old ^ (1 << bit)))
    const outcome = await loadOutcome(path)
    assert.equal(outcome.code, 'ERR_STORE_DECODE', `bit ${bit}: loaded ${JSON.stringify(outcome.state)}`)
  }
})

test('a middle record whose length is set huge, or shorter, is refused with ERR_STORE_DECODE', async () => {
  for (const length of [0xffffffff, 1_000_000, 3]) {
    const path = plant(withLength(journalFor(SNAPSHOT, RECORDS), 1, () => length))
    const outcome = await loadOutcome(path)
    assert.equal(outcome.code, 'ERR_STORE_DECODE', `length ${length}: loaded ${JSON.stringify(outcome.state)}`)
  }
})

test("a flipped bit in the header record's length is refused with ERR_STORE_DECODE, not read as an empty journal", async () => {
  const path = plant(withLength(journalFor(SNAPSHOT, RECORDS), 0, (old) => old ^ (1 << 20)))
  const outcome = await loadOutcome(path)
  assert.equal(outcome.code, 'ERR_STORE_DECODE', `loaded ${JSON.stringify(outcome.state)}`)
})

test('zero-filled tails (8 NULs, 4096 NULs, a zeroed last record) are torn tails: dropped silently, all before them kept', async () => {
  const whole = journalFor(SNAPSHOT, RECORDS)
  const last = recordSpans(whole).at(-1)
  assert.ok(last !== undefined)
  const zeroedLast = Buffer.from(whole)
  zeroedLast.fill(0, last.start)
  const zeroedEnd = Buffer.from(whole)
  zeroedEnd.fill(0, last.payload + 2)
  const cases: Array<[string, Buffer, Record<string, number>]> = [
    ['8 NULs', Buffer.concat([whole, Buffer.alloc(8)]), ACKED],
    ['4096 NULs', Buffer.concat([whole, Buffer.alloc(4096)]), ACKED],
    ['a zeroed last record', zeroedLast, { keep: 0, a: 1, c: 3 }],
    ['a last record zeroed from its third payload byte', zeroedEnd, { keep: 0, a: 1, c: 3 }]
  ]
  for (const [name, journal, expected] of cases) {
    for (const onCorrupt of ['throw', 'quarantine'] as const) {
      const path = plant(journal)
      const logger = recordingLogger()
      const outcome = await loadOutcome(path, { onCorrupt, logger })
      assert.deepEqual(outcome.state, expected, `${name}, onCorrupt ${onCorrupt}: ${outcome.message ?? ''}`)
      assert.deepEqual(readdirSync(join(path, '..')).filter((f) => f.includes('.corrupt.')), [], `${name}: nothing moved aside`)
      assert.deepEqual(logger.lines.filter((l) => l.level === 'error'), [])
    }
  }
})

test('load() never writes: the journal keeps its bytes after loading a torn tail or refusing damage', async () => {
  const whole = journalFor(SNAPSHOT, RECORDS)
  const torn = Buffer.concat([whole, journalFor(SNAPSHOT, [[['e', 5]]]).subarray(recordSpans(whole)[1]?.start ?? 0).subarray(0, 9)])
  const zeros = Buffer.concat([whole, Buffer.alloc(8)])
  const damaged = withLength(whole, 2, (old) => old ^ (1 << 31))
  const otherSnapshot = journalFor('{"other":1}', RECORDS)
  for (const [name, journal] of [['torn', torn], ['zeros', zeros], ['damaged', damaged], ['other snapshot', otherSnapshot]] as const) {
    const path = plant(journal)
    await loadOutcome(path)
    assert.deepEqual(readFileSync(`${path}.journal`), journal, `${name}: ${journal.byteLength} bytes before the load, ${statSync(`${path}.journal`).size} after`)
  }
})

test('the first append after a load cuts off the torn tail, and a reload sees every acknowledged record', async () => {
  const whole = journalFor(SNAPSHOT, RECORDS)
  const path = plant(Buffer.concat([whole, Buffer.alloc(4096)]))
  const store = openJournaled<number>(path)
  await store.load()
  store.set('e', 5)
  await store.saveNow()
  await store.close()
  const reloaded = await loadOutcome(path)
  assert.deepEqual(reloaded.state, { ...ACKED, e: 5 })
})
