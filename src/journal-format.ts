import { crc32 } from 'node:zlib'
import type { KeyedOp } from './protocol.js'

// The journal's on-disk format, and the rules that decide what a journal means next to a snapshot.
// Pure and stateless: the main thread reads a store's files with it (load), and the keyed writer
// builds its mirror from the same bytes with it. Neither side may disagree with the other.
//
// Format 2 (the one this version writes):
//
//   magic  "\x89OSJRNL" + version byte 0x02            (8 bytes)
//   record [u32 LE payload length][u32 LE CRC-32 of payload][u32 LE CRC-32 of the 8 bytes before]
//          [payload: UTF-8 JSON]
//
// The third word guards the length: a damaged length fails its own check instead of being read as
// a record that runs to the end of the file. Payloads:
//
//   {"snapshot":{"bytes":N,"crc":C}}   the first record: the exact snapshot this journal extends
//   {"d":["key",...],"s":{...}}        one save: keys deleted, then entries set (encoded by the codec)
//   {"next":{"bytes":N,"crc":C}}       appended by a compaction just before its new snapshot is
//                                      renamed in: from then on that snapshot may be the one on disk
//
// Under a compressing or encrypting codec a change record's payload is that JSON in the codec's
// frames (src/codec-frames.ts), so the journal is compressed or encrypted as the snapshot is; an
// encrypted record is bound to its store, the snapshot its header names and its own offset. The
// header and successor records stay plain: they hold only lengths and checksums.
//
// Format 1 (0.1.0) is still read: records [u32 len][u32 crc32(payload)][JSON], the first one
// {"snapshot":{...}}, every later one an array of ops (["key"] deletes, ["key", value] sets).

/** The first 7 bytes of a format-2 journal; the 8th is the format version. */
const MAGIC = Buffer.from([0x89, 0x4f, 0x53, 0x4a, 0x52, 0x4e, 0x4c])
/** The format this code writes. */
const JOURNAL_VERSION = 2
/** Bytes before the first record of a format-2 journal. */
export const JOURNAL_PREAMBLE = MAGIC.byteLength + 1
const FRAME = 12
const LEGACY_FRAME = 8

/** Identifies a snapshot's exact bytes. */
export interface SnapshotId {
  readonly bytes: number
  readonly crc: number
}

/** The identity of snapshot bytes. */
export function snapshotIdOf (data: string | Uint8Array): SnapshotId {
  return { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength, crc: crc32(data) }
}

/** The journal path for a store file. */
export function journalPathFor (path: string): string {
  return `${path}.journal`
}

/** The journal's bytes cannot be trusted, or it extends a snapshot that is not on disk: loading it would load a wrong state. */
export class JournalCorruptError extends Error {}

/** One record after the header. */
type JournalRecord =
  | { readonly kind: 'change', readonly ops: readonly KeyedOp[] }
  | { readonly kind: 'next', readonly snapshot: SnapshotId }

/** A journal's records, verified. */
export interface ParsedJournal {
  /** 1: the 0.1.0 format (appending to it is not allowed; it is rewritten first). 2: the current one. */
  readonly version: 1 | 2
  /** The snapshot the journal was started for. */
  readonly header: SnapshotId
  readonly records: readonly JournalRecord[]
  /** Where the records after the header start. */
  readonly recordsStart: number
  /** Where the records that verified end: a torn tail after it is dropped before the next append. */
  readonly validBytes: number
  /** The file's length as read. */
  readonly totalBytes: number
}

/** A frame of the current format around `payload`. */
function frame (payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(FRAME + payload.byteLength)
  record.writeUInt32LE(payload.byteLength, 0)
  record.writeUInt32LE(crc32(payload), 4)
  record.writeUInt32LE(crc32(record.subarray(0, 8)), 8)
  payload.copy(record, FRAME)
  return record
}

/** The first bytes of a new journal: the magic, the version, and the header record naming `snapshot`. */
export function encodeJournalStart (snapshot: SnapshotId): Buffer {
  const preamble = Buffer.concat([MAGIC, Buffer.from([JOURNAL_VERSION])])
  return Buffer.concat([preamble, frame(Buffer.from(JSON.stringify({ snapshot: { bytes: snapshot.bytes, crc: snapshot.crc } })))])
}

/**
 * One save's record. `setsJson` is the JSON text of an object of the entries set, encoded by the
 * store's codec (so the journal holds what a snapshot would); `deletes` are removed first. `wrap`
 * puts the payload in the codec's compression or encryption frames.
 */
export function encodeChangeRecord (deletes: readonly string[], setsJson: string, wrap?: (payload: Buffer) => string | Uint8Array): Buffer {
  const payload = Buffer.from(`{"d":${JSON.stringify(deletes)},"s":${setsJson}}`)
  if (wrap === undefined) return frame(payload)
  const wrapped = wrap(payload)
  return frame(typeof wrapped === 'string' ? Buffer.from(wrapped) : Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength))
}

/**
 * Removes a change record's frames as the store's codec says (decompress, authenticate and decrypt),
 * given where the record starts and the snapshot its journal extends; throws when it cannot.
 */
export type RecordOpener = (payload: Uint8Array, at: number, header: SnapshotId) => Uint8Array

const OPEN_BRACE = 0x7b

/** The record a compaction appends before renaming in the snapshot `next`. */
export function encodeNextRecord (next: SnapshotId): Buffer {
  return frame(Buffer.from(JSON.stringify({ next: { bytes: next.bytes, crc: next.crc } })))
}

function isSnapshotId (value: unknown): value is SnapshotId {
  const id = value as SnapshotId | null
  return typeof id === 'object' && id !== null && Number.isSafeInteger(id.bytes) && id.bytes >= 0 && Number.isInteger(id.crc) && id.crc >= 0 && id.crc <= 0xffffffff
}

function jsonOf (payload: Uint8Array, at: number): unknown {
  try {
    return JSON.parse(utf8.decode(payload))
  } catch (err) {
    throw new JournalCorruptError(`the journal record at byte ${at} passes its checksum but is not valid JSON (${(err as Error).message})`)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function headerOf (payload: Uint8Array, at: number): SnapshotId {
  const value = jsonOf(payload, at) as { snapshot?: unknown } | null
  if (typeof value !== 'object' || value === null || !isSnapshotId(value.snapshot)) {
    throw new JournalCorruptError(`the journal's first record (at byte ${at}) is not a header naming its snapshot`)
  }
  return { bytes: value.snapshot.bytes, crc: value.snapshot.crc }
}

function opened (open: RecordOpener | undefined, payload: Uint8Array, at: number, header: SnapshotId): Uint8Array {
  if (open === undefined) return payload
  try {
    return open(payload, at, header)
  } catch (err) {
    throw new JournalCorruptError(`the journal record at byte ${at} passes its checksum but cannot be opened: ${(err as Error).message}`)
  }
}

function recordOf (payload: Uint8Array, at: number, header: SnapshotId, open: RecordOpener | undefined): JournalRecord {
  // A successor record is plain JSON whatever the codec; a change record goes through the codec's frames.
  let value = (payload[0] === OPEN_BRACE ? jsonOf(payload, at) : undefined) as { d?: unknown, s?: unknown, next?: unknown } | null | undefined
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && isSnapshotId(value.next)) {
    return { kind: 'next', snapshot: { bytes: value.next.bytes, crc: value.next.crc } }
  }
  const plain = opened(open, payload, at, header)
  if (plain !== payload || value === undefined) value = jsonOf(plain, at) as typeof value
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { d, s } = value
    if (Array.isArray(d) && d.every((key) => typeof key === 'string') && typeof s === 'object' && s !== null && !Array.isArray(s)) {
      const ops: KeyedOp[] = (d as string[]).map((key) => [key])
      for (const key of Object.keys(s)) ops.push([key, (s as Record<string, unknown>)[key]])
      return { kind: 'change', ops }
    }
  }
  throw new JournalCorruptError(`the journal record at byte ${at} is neither a change nor a successor record`)
}

function legacyRecordOf (payload: Uint8Array, at: number, header: SnapshotId, open: RecordOpener | undefined): JournalRecord {
  const value = jsonOf(opened(open, payload, at, header), at)
  const isOp = (op: unknown): op is KeyedOp => Array.isArray(op) && typeof op[0] === 'string' && (op.length === 1 || op.length === 2)
  if (!Array.isArray(value) || !value.every(isOp)) throw new JournalCorruptError(`the journal record at byte ${at} is not a list of changes`)
  return { kind: 'change', ops: value }
}

/** Index where the run of zero bytes that ends the buffer starts (its length when the last byte is not zero). */
function trailingZerosFrom (bytes: Uint8Array): number {
  let z = bytes.byteLength
  while (z > 0 && bytes[z - 1] === 0) z--
  return z
}

/**
 * Reads and verifies a journal's bytes. A torn tail is dropped silently: what a crash leaves of the
 * last append, that is bytes after the last record that verifies which are fewer than a record
 * header, or a record whose own header verifies but that the end of the file, or a run of zero bytes
 * reaching the end of the file, cuts short (file systems leave zeros where data never landed).
 * Anything else that fails a check throws {@link JournalCorruptError}: acknowledged records may lie
 * beyond it, and so does a change record `open` refuses. Returns undefined for an empty or all-zero
 * file, which holds no record at all.
 */
export function parseJournal (bytes: Uint8Array, open?: RecordOpener): ParsedJournal | undefined {
  const zerosFrom = trailingZerosFrom(bytes)
  if (zerosFrom === 0) return undefined
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.byteLength >= MAGIC.byteLength && view.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    const version = view[MAGIC.byteLength]
    if (version !== JOURNAL_VERSION) throw new JournalCorruptError(`the journal is in format ${String(version)}, which this version does not know`)
    return parseCurrent(view, zerosFrom, open)
  }
  return parseLegacy(view, zerosFrom, open)
}

function parseCurrent (view: Buffer, zerosFrom: number, open: RecordOpener | undefined): ParsedJournal {
  let header: SnapshotId | undefined
  let recordsStart = 0
  const records: JournalRecord[] = []
  let offset = JOURNAL_PREAMBLE
  while (offset < view.byteLength) {
    // Bytes up to the zero run: fewer than a header means the last append's header never landed.
    if (zerosFrom - offset < FRAME) break
    const headerOk = crc32(view.subarray(offset, offset + 8)) === view.readUInt32LE(offset + 8)
    if (!headerOk) throw new JournalCorruptError(`the journal record at byte ${offset} has a damaged length or checksum, and data follows it`)
    const end = offset + FRAME + view.readUInt32LE(offset)
    // Cut short by the end of the file: the torn last append.
    if (end > view.byteLength) break
    const payload = view.subarray(offset + FRAME, end)
    if (crc32(payload) !== view.readUInt32LE(offset + 4)) {
      // Reaching into the zeros that end the file: the torn last append, whose data never landed.
      // A record that verifies is whole even when it ends in zeros (a gzip trailer, a GCM tag).
      if (end > zerosFrom) break
      throw new JournalCorruptError(`the journal record at byte ${offset} fails its checksum`)
    }
    if (header === undefined) {
      header = headerOf(payload, offset)
      recordsStart = end
    } else {
      records.push(recordOf(payload, offset, header, open))
    }
    offset = end
  }
  if (header === undefined) throw new JournalCorruptError('the journal has no complete header record')
  return { version: 2, header, records, recordsStart, validBytes: offset, totalBytes: view.byteLength }
}

function parseLegacy (view: Buffer, zerosFrom: number, open: RecordOpener | undefined): ParsedJournal {
  let header: SnapshotId | undefined
  let recordsStart = 0
  const records: JournalRecord[] = []
  let offset = 0
  while (offset < view.byteLength) {
    // The 0.1.0 framing cannot tell a damaged length from a torn append; it is read as it always was.
    if (zerosFrom - offset < LEGACY_FRAME) break
    const end = offset + LEGACY_FRAME + view.readUInt32LE(offset)
    if (end > view.byteLength) break
    const payload = view.subarray(offset + LEGACY_FRAME, end)
    if (crc32(payload) !== view.readUInt32LE(offset + 4)) {
      if (end >= zerosFrom) break
      throw new JournalCorruptError(`the 0.1.0-format journal record at byte ${offset} fails its checksum and is not the last record`)
    }
    if (header === undefined) {
      header = headerOf(payload, offset)
      recordsStart = end
    } else {
      records.push(legacyRecordOf(payload, offset, header, open))
    }
    offset = end
  }
  if (header === undefined) throw new JournalCorruptError('the file beside the store is not a journal this version can read')
  return { version: 1, header, records, recordsStart, validBytes: offset, totalBytes: view.byteLength }
}

function sameSnapshot (a: SnapshotId | undefined, b: SnapshotId | undefined): boolean {
  return a !== undefined && b !== undefined && a.bytes === b.bytes && a.crc === b.crc
}

function describe (id: SnapshotId | undefined): string {
  return id === undefined ? 'no file' : `${id.bytes} bytes with CRC-32 ${id.crc}`
}

/** What a journal means beside the snapshot on disk. */
export type JournalReading =
  /** The journal extends this snapshot: replay `changes` in order over it. */
  | { readonly use: 'replay', readonly journal: ParsedJournal, readonly changes: ReadonlyArray<readonly KeyedOp[]>, readonly recordBytes: number }
  /**
   * The journal holds nothing the snapshot lacks: a compaction renamed its snapshot in but did not
   * get to start the journal over (`folded`), or the journal holds no change at all (`empty`).
   */
  | { readonly use: 'ignore', readonly why: 'folded' | 'empty', readonly message: string }

/**
 * Decides what `journal` means beside the snapshot `snapshot` (undefined: no snapshot file). A
 * journal naming another snapshot is ignored only when it cannot hold an acknowledged change the
 * snapshot lacks; otherwise it throws {@link JournalCorruptError} rather than load a wrong state.
 */
export function readJournalOver (snapshot: SnapshotId | undefined, journal: ParsedJournal): JournalReading {
  const changes: Array<readonly KeyedOp[]> = []
  let lastChange = -1
  journal.records.forEach((record, index) => {
    if (record.kind === 'change') { changes.push(record.ops); lastChange = index }
  })
  if (sameSnapshot(journal.header, snapshot)) {
    return { use: 'replay', journal, changes, recordBytes: journal.validBytes - journal.recordsStart }
  }
  // A compaction appends {"next": id} before renaming the snapshot `id` in: every change before
  // that record is in that snapshot. A journal naming the snapshot on disk after its last change
  // was folded in by a compaction that crashed before starting the journal over.
  const folded = journal.records.some((record, index) => index > lastChange && record.kind === 'next' && sameSnapshot(record.snapshot, snapshot))
  if (folded) return { use: 'ignore', why: 'folded', message: 'the journal was already folded into the snapshot by a compaction' }
  if (changes.length === 0) {
    return { use: 'ignore', why: 'empty', message: `the journal names another snapshot (${describe(journal.header)}, on disk: ${describe(snapshot)}) but holds no change; it is ignored` }
  }
  throw new JournalCorruptError(`the journal holds ${changes.length} saved change(s) over a snapshot of ${describe(journal.header)}, but the snapshot on disk is ${describe(snapshot)}; replaying them over it would load a wrong state`)
}

/** Applies ops in order to a map of entries. */
export function applyOps (entries: Map<string, unknown>, ops: readonly KeyedOp[]): void {
  for (const op of ops) {
    if (op.length === 1) entries.delete(op[0])
    else entries.set(op[0], op[1])
  }
}

/** The entries of a decoded keyed file; throws a TypeError saying what was found instead of an object. */
export function entriesOfDecoded (decoded: unknown): Map<string, unknown> {
  if (decoded instanceof Map) return decoded as Map<string, unknown>
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    const found = Array.isArray(decoded) ? 'an array' : decoded === null ? 'null' : typeof decoded
    throw new TypeError(`a keyed store's file must hold an object of entries, found ${found}`)
  }
  // One pass over the keys: Object.entries would build an array of pairs first, and at a million
  // entries that costs as much again as JSON.parse.
  const entries = new Map<string, unknown>()
  const object = decoded as Record<string, unknown>
  for (const key of Object.keys(object)) entries.set(key, object[key])
  return entries
}

/** What a journal file must be before this process reads or appends to it. */
export interface JournalFileStats {
  isFile: () => boolean
  readonly uid: number
  readonly nlink: number
}

/**
 * Why an existing journal file cannot be trusted, or undefined when it can: it must be a regular
 * file owned by this process's effective uid with exactly one link. A file another user planted in
 * a shared directory would be read by them (or feed us records), and a hard link would make our
 * appends and truncations land in a file outside the directory.
 */
export function journalFileProblem (stats: JournalFileStats, euid: number | undefined): string | undefined {
  if (!stats.isFile()) return 'is not a regular file'
  if (euid !== undefined && stats.uid !== euid) return `is owned by uid ${stats.uid}, not by this process (uid ${euid})`
  if (stats.nlink !== 1) return `has ${stats.nlink} hard links (a file reachable from elsewhere)`
  return undefined
}
