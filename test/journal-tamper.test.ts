import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore, StoreError } from '../src/index.js'
import type { KeyedOp } from '../src/protocol.js'
import { fakeRegister, tempDir } from './helpers.js'
import { journalFor, recordSpans } from './journal-helpers.js'

// Every single-byte damage to a journal: each bit on its own and all eight at once, at every byte
// (magic, header, each record's length, checksums and payload). A load must give exactly the
// acknowledged state or a coded StoreError, and must leave the journal's bytes as they were.

const dir = tempDir()
const SNAPSHOT = '{"keep":0}'
const RECORDS: KeyedOp[][] = [[['a', 1], ['b', 'two']], [['b']], [['c', { d: [3] }]]]
const ACKED = JSON.stringify({ keep: 0, a: 1, c: { d: [3] } })

test('every single-byte flip in a journal loads the exact acknowledged state or rejects with a coded StoreError, and never changes the journal', async (t) => {
  const path = join(dir, 'map.json')
  writeFileSync(path, SNAPSHOT)
  const journal = journalFor(SNAPSHOT, RECORDS)
  const store = new KeyedStore<string, unknown>({ path, shutdownRegister: fakeRegister().register, journal: true, delayMs: 60_000 })
  writeFileSync(`${path}.journal`, journal)
  assert.equal(JSON.stringify(Object.fromEntries(await store.load())), ACKED, 'the undamaged journal loads')
  const spans = recordSpans(journal)
  const regionOf = (offset: number): string => {
    const index = spans.findIndex((s) => offset < s.end)
    const span = spans[index]
    if (span === undefined) return 'beyond'
    const part = offset < span.length ? 'magic' : offset < span.crc ? 'length' : offset < span.payload ? 'checksums' : 'payload'
    return `${index === 0 ? 'header' : `record ${index}`} ${part}`
  }
  const outcomes = new Map<string, number>()
  const wrong: string[] = []
  const count = (key: string): void => { outcomes.set(key, (outcomes.get(key) ?? 0) + 1) }
  let flips = 0
  for (let offset = 0; offset < journal.byteLength; offset++) {
    for (const pattern of [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff]) {
      const damaged = Buffer.from(journal)
      damaged[offset] = (damaged[offset] ?? 0) ^ pattern
      writeFileSync(`${path}.journal`, damaged)
      flips++
      try {
        const state = JSON.stringify(Object.fromEntries(await store.load()))
        if (state === ACKED) count('exact state')
        else wrong.push(`${regionOf(offset)} byte ${offset} ^ 0x${pattern.toString(16)}: loaded ${state}`)
      } catch (err) {
        if (err instanceof StoreError) count(err.code)
        else wrong.push(`${regionOf(offset)} byte ${offset} ^ 0x${pattern.toString(16)}: ${String(err)}`)
      }
      if (!readFileSync(`${path}.journal`).equals(damaged)) wrong.push(`${regionOf(offset)} byte ${offset} ^ 0x${pattern.toString(16)}: the load changed the journal`)
      if (readFileSync(path, 'utf8') !== SNAPSHOT) wrong.push(`byte ${offset}: the load changed the snapshot`)
    }
  }
  await store.close()
  t.diagnostic(`${flips} flips over ${journal.byteLength} bytes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}, wrong ${wrong.length}`)
  assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} of ${flips} flips went wrong`)
})
