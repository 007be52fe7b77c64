import { crc32 } from 'node:zlib'
import { KeyedStore, type KeyedStoreOptions } from '../src/index.js'
import { encodeJournalStart, encodeNextRecord, JOURNAL_PREAMBLE, snapshotIdOf } from '../src/journal-format.js'
import type { KeyedOp } from '../src/protocol.js'
import { encodeOps } from '../workers/journal.js'
import { fakeRegister } from './helpers.js'

// Builds journal files byte by byte for the journal tests, finds where each record lies, and opens
// the journaled store they are read by.

/** A journaled KeyedStore on `path` that never saves or compacts on its own, plus `extra`. */
export function openJournaled<V> (path: string, extra: Partial<KeyedStoreOptions<V>> = {}): KeyedStore<string, V> {
  return new KeyedStore<string, V>({ path, shutdownRegister: fakeRegister().register, delayMs: 60_000, journal: { compactRatio: 1000 }, ...extra })
}

/** A journal extending the snapshot `snapshotText`, holding `records` (each one save's ops, deletes before sets). */
export function journalFor (snapshotText: string, records: ReadonlyArray<readonly KeyedOp[]>): Buffer {
  return Buffer.concat([encodeJournalStart(snapshotIdOf(snapshotText)), ...records.map((ops) => encodeOps({ kind: 'json' }, ops))])
}

/** The record a compaction appends before renaming its new snapshot `snapshotText` in. */
export function nextRecordFor (snapshotText: string): Buffer {
  return encodeNextRecord(snapshotIdOf(snapshotText))
}

/** Where one record lies in a journal: its first byte, its length field, its checksums, its payload, its end. */
export interface RecordSpan { readonly start: number, readonly length: number, readonly crc: number, readonly payload: number, readonly end: number }

/** The spans of every record in a well-formed journal, the header first (its span starts with the magic). */
export function recordSpans (journal: Buffer): RecordSpan[] {
  const spans: RecordSpan[] = []
  for (let offset = JOURNAL_PREAMBLE; offset < journal.byteLength;) {
    const end = offset + 12 + journal.readUInt32LE(offset)
    spans.push({ start: spans.length === 0 ? 0 : offset, length: offset, crc: offset + 4, payload: offset + 12, end })
    offset = end
  }
  return spans
}

/** A journal in the 0.1.0 format: `[u32 len][u32 crc32(payload)][json]`, header `{"snapshot":{bytes,crc}}`. */
export function legacyJournalFor (snapshotText: string, records: ReadonlyArray<readonly KeyedOp[]>): Buffer {
  const frame = (payload: Buffer): Buffer => {
    const head = Buffer.alloc(8)
    head.writeUInt32LE(payload.byteLength, 0)
    head.writeUInt32LE(crc32(payload), 4)
    return Buffer.concat([head, payload])
  }
  const snapshot = { bytes: Buffer.byteLength(snapshotText), crc: crc32(snapshotText) }
  return Buffer.concat([frame(Buffer.from(JSON.stringify({ snapshot }))), ...records.map((ops) => frame(Buffer.from(JSON.stringify(ops))))])
}
