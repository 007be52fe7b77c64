import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { crc32 } from 'node:zlib'
import { type Codec, codecs, KeyedStore } from '../src/index.js'
import { recordOpener } from '../src/codec-frames.js'
import { encodeJournalStart, parseJournal, snapshotIdOf } from '../src/journal-format.js'
import { encodeOps } from '../workers/journal.js'
import { recordSpans } from './journal-helpers.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `k${n++}.bin`)
const register = fakeRegister().register
const key = { id: 'main', key: randomBytes(32) }
const entrySchema = { type: 'object', additionalProperties: { type: 'object', properties: { label: { type: 'string' }, n: { type: 'integer' } } } }

const bases = {
  json: (): Codec<unknown> => codecs.json(),
  schema: (): Codec<unknown> => codecs.schema(entrySchema),
  module: (): Codec<unknown> => codecs.module(new URL('./fixtures/entries-codec.js', import.meta.url))
} as const
const compressions = {
  none: (c: Codec<unknown>): Codec<unknown> => c,
  gzip: (c: Codec<unknown>): Codec<unknown> => codecs.gzip(c),
  brotli: (c: Codec<unknown>): Codec<unknown> => codecs.brotli(c)
} as const
const encryptions = {
  plain: (c: Codec<unknown>): Codec<unknown> => c,
  encrypted: (c: Codec<unknown>): Codec<unknown> => codecs.encrypted(c, { keys: [key] })
} as const

function open (path: string, codec: Codec<unknown>, journal: boolean, name?: string): KeyedStore<string, unknown> {
  // A high ratio keeps small states appending to the journal instead of compacting at once.
  return new KeyedStore<string, unknown>({ path, shutdownRegister: register, codec: codec as Codec<Record<string, unknown>>, delayMs: 0, ...(journal ? { journal: { compactRatio: 1000 } } : {}), ...(name === undefined ? {} : { name }) })
}

/** Writes a snapshot, then two saves of changes (journal records when `journal`), and returns what the store holds. */
async function writeHistory (path: string, codec: Codec<unknown>, journal: boolean, name?: string): Promise<Map<string, unknown>> {
  const store = open(path, codec, journal, name)
  await store.load()
  for (let i = 0; i < 5; i++) store.set(`lamp-${i}`, { label: `secret label ${i}`, n: i })
  await store.saveNow()
  store.set('lamp-1', { label: 'secret renamed', n: 10 })
  store.delete('lamp-2')
  await store.saveNow()
  store.set('lamp-9', { label: 'secret new', n: 9 })
  await store.saveNow()
  const state = new Map(store.entries())
  await store.close()
  return state
}

for (const [baseName, base] of Object.entries(bases)) {
  for (const [compressionName, compress] of Object.entries(compressions)) {
    for (const [encryptionName, encrypt] of Object.entries(encryptions)) {
      for (const journal of baseName === 'module' ? [false] : [false, true]) {
        test(`KeyedStore round trip: ${baseName} x ${compressionName} x ${encryptionName}${journal ? ' with a journal' : ''} reloads what was saved`, async () => {
          const path = file()
          const codec = encrypt(compress(base()))
          const saved = await writeHistory(path, codec, journal)
          if (journal) assert.ok(existsSync(`${path}.journal`) && recordSpans(readFileSync(`${path}.journal`)).length === 3, 'the changes went to the journal')
          if (encryptionName === 'encrypted') {
            for (const bytes of [readFileSync(path), ...(journal ? [readFileSync(`${path}.journal`)] : [])]) assert.ok(!bytes.includes('secret') && !bytes.includes('lamp'), 'no plaintext on disk')
          }
          const reader = open(path, codec, journal)
          assert.deepEqual(new Map(await reader.load()), saved)
          // The worker rebuilt its mirror from the same files: one more save must keep every entry.
          reader.set('lamp-0', { label: 'again', n: 0 })
          await reader.saveNow()
          await reader.close()
          const again = open(path, codec, journal)
          assert.deepEqual(new Map(await again.load()), new Map([...saved, ['lamp-0', { label: 'again', n: 0 }]]))
          await again.close()
        })
      }
    }
  }
}

test('a compressed store\'s journal records are compressed too', async () => {
  const path = file()
  await writeHistory(path, codecs.gzip(codecs.json()), true)
  const journal = readFileSync(`${path}.journal`)
  const [, ...records] = recordSpans(journal)
  assert.equal(records.length, 2)
  for (const record of records) assert.deepEqual([...journal.subarray(record.payload, record.payload + 2)], [0x1f, 0x8b])
})

test('a journal record whose payload ends in zero bytes (a gzip trailer, an unlucky GCM tag) is replayed, not dropped as a torn tail', () => {
  const spec = codecs.gzip(codecs.json()).spec
  const snapshot = snapshotIdOf('{}')
  const start = encodeJournalStart(snapshot)
  const record = encodeOps(spec, [['k', 'v']], { snapshot, offset: start.byteLength })
  assert.equal(record[record.byteLength - 1], 0, 'gzip ends with the input size, whose high bytes are zero')
  const parsed = parseJournal(Buffer.concat([start, record]), recordOpener(spec))
  assert.deepEqual(parsed?.records, [{ kind: 'change', ops: [['k', 'v']] }])
})

/** Rewrites a record's two checksums, so only the codec's own checks can catch a change. */
function reframe (journal: Buffer, start: number, end: number): void {
  journal.writeUInt32LE(crc32(journal.subarray(start + 12, end)), start + 4)
  journal.writeUInt32LE(crc32(journal.subarray(start, start + 8)), start + 8)
}

test('a changed byte in an encrypted journal record, under valid checksums, is ERR_STORE_DECODE', async () => {
  const path = file()
  const codec = codecs.encrypted(codecs.json(), { keys: [key] })
  await writeHistory(path, codec, true)
  const good = readFileSync(`${path}.journal`)
  const [, first] = recordSpans(good)
  assert.ok(first !== undefined)
  for (let at = first.payload; at < first.end; at++) {
    const bad = Buffer.from(good)
    bad[at] = (bad[at] ?? 0) ^ 0x80
    reframe(bad, first.start, first.end)
    writeFileSync(`${path}.journal`, bad)
    const store = open(path, codec, true)
    await assert.rejects(store.load(), (err: unknown) => (err as { code?: string }).code === 'ERR_STORE_DECODE')
    await store.close()
  }
})

test('encrypted journal records swapped into each other\'s places are ERR_STORE_DECODE', async () => {
  const path = file()
  const codec = codecs.encrypted(codecs.json(), { keys: [key] })
  await writeHistory(path, codec, true)
  const good = readFileSync(`${path}.journal`)
  const [header, a, b] = recordSpans(good)
  assert.ok(header !== undefined && a !== undefined && b !== undefined)
  writeFileSync(`${path}.journal`, Buffer.concat([good.subarray(0, a.start), good.subarray(b.start, b.end), good.subarray(a.start, a.end)]))
  const store = open(path, codec, true)
  await assert.rejects(store.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /authentication failed/)
    return true
  })
  await store.close()
})

test('a plain journal record planted beside an encrypted snapshot is ERR_STORE_DECODE', async () => {
  const path = file()
  const codec = codecs.encrypted(codecs.json(), { keys: [key] })
  await writeHistory(path, codec, true)
  const good = readFileSync(`${path}.journal`)
  const [, first] = recordSpans(good)
  assert.ok(first !== undefined)
  const payload = Buffer.from('{"d":[],"s":{"admin":{"label":"planted","n":1}}}')
  const record = Buffer.alloc(12 + payload.byteLength)
  record.writeUInt32LE(payload.byteLength, 0)
  payload.copy(record, 12)
  reframe(record, 0, record.byteLength)
  writeFileSync(`${path}.journal`, Buffer.concat([good.subarray(0, first.start), record]))
  const store = open(path, codec, true)
  await assert.rejects(store.load(), /not encrypted \(plain\)/)
  await store.close()
})

test('a keyed store\'s encrypted files copied to another store with the same key are ERR_STORE_DECODE', async () => {
  const codec = codecs.encrypted(codecs.gzip(codecs.json()), { keys: [key] })
  const from = file()
  await writeHistory(from, codec, true, 'one')
  const to = file()
  copyFileSync(from, to)
  const store = open(to, codec, true, 'two')
  await assert.rejects(store.load(), (err: unknown) => (err as { code?: string }).code === 'ERR_STORE_DECODE')
  await store.close()
})
