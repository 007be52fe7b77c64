import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import type { KeyedOp } from '../src/protocol.js'
import { syncDirectory } from './atomic-write.js'

// The journal is a sidecar file of records:
//
//   [u32 LE payload length][u32 LE CRC-32 of payload][payload: UTF-8 JSON]
//
// The first record is a header, {"snapshot":{"bytes":N,"crc":C}}, naming the exact snapshot the
// journal extends. Every later record is one save's changes, an array of ops: ["key"] deletes,
// ["key", value] sets. A save appends one record and fsyncs: one write and one fsync instead of
// rewriting the whole file. Load replays the records over the snapshot, in order.
//
// Compaction writes a new snapshot (atomically, durably), then empties the journal and writes a new
// header. A crash between the two leaves a journal whose header names the old snapshot: it is
// ignored, since the new snapshot already holds all of it (replaying it would rewind keys that
// later changes overwrote). Only the last record can be torn by a crash mid-append: it is ignored
// and cut off before the next append. A damaged record anywhere else is corruption and is reported.

const HEADER = 8

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

/** Raised when a record other than the last one is damaged: that is corruption, not a torn append. */
export class JournalCorruptError extends Error {}

function frame (payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(HEADER + payload.byteLength)
  record.writeUInt32LE(payload.byteLength, 0)
  record.writeUInt32LE(crc32(payload), 4)
  payload.copy(record, HEADER)
  return record
}

/** Encodes one record of ops. */
export function encodeRecord (ops: readonly KeyedOp[]): Buffer {
  return frame(Buffer.from(JSON.stringify(ops)))
}

/** Encodes the header record that ties a journal to one snapshot. */
export function encodeHeader (snapshot: SnapshotId): Buffer {
  return frame(Buffer.from(JSON.stringify({ snapshot })))
}

/** What a journal holds for a given snapshot. */
export interface JournalContents {
  /** The records to replay, in order; empty when the journal belongs to another snapshot. */
  readonly records: KeyedOp[][]
  /** Length of the valid prefix worth keeping; 0 when the journal must start over. */
  readonly validBytes: number
  /** The file's length on disk. */
  readonly totalBytes: number
}

/** Reads the journal that extends `snapshot` (undefined: no snapshot file). */
export function readJournal (path: string, snapshot: SnapshotId | undefined): JournalContents {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], validBytes: 0, totalBytes: 0 }
    throw err
  }
  const payloads: Buffer[] = []
  let offset = 0
  while (offset < bytes.byteLength) {
    const remaining = bytes.byteLength - offset
    if (remaining < HEADER) break // torn header of the last record
    const length = bytes.readUInt32LE(offset)
    if (length > remaining - HEADER) break // torn payload of the last record
    const payload = bytes.subarray(offset + HEADER, offset + HEADER + length)
    if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) {
      // A bad checksum on the last record is a torn append (not all its pages reached the disk);
      // anywhere else, records after it were acknowledged, so this is damage we must not hide.
      if (offset + HEADER + length === bytes.byteLength) break
      throw new JournalCorruptError(`journal record at byte ${offset} fails its checksum and is not the last record`)
    }
    payloads.push(payload)
    offset += HEADER + length
  }
  const [first, ...rest] = payloads
  const header = first === undefined ? undefined : JSON.parse(first.toString('utf8')) as { snapshot?: SnapshotId }
  const matches = header?.snapshot !== undefined && snapshot !== undefined &&
    header.snapshot.bytes === snapshot.bytes && header.snapshot.crc === snapshot.crc
  if (!matches) return { records: [], validBytes: 0, totalBytes: bytes.byteLength }
  return { records: rest.map((payload) => JSON.parse(payload.toString('utf8')) as KeyedOp[]), validBytes: offset, totalBytes: bytes.byteLength }
}

/** Applies ops in order to a mirror. */
export function applyOps (mirror: Map<string, unknown>, ops: readonly KeyedOp[]): void {
  for (const op of ops) {
    if (op.length === 1) mirror.delete(op[0])
    else mirror.set(op[0], op[1])
  }
}

function writeAll (fd: number, data: Buffer): void {
  let offset = 0
  while (offset < data.byteLength) offset += writeSync(fd, data, offset, data.byteLength - offset)
}

/** An open journal that extends one snapshot: appends records durably; starts over after a compaction. */
export class JournalWriter {
  readonly #fsync: boolean
  readonly #fd: number
  #size: number
  #headerBytes = 0

  /**
   * Opens (creating if needed) the journal for `snapshot`, keeping its first `validBytes` (the
   * records that extend it) and cutting off the rest: a torn tail, or a journal of another snapshot.
   */
  constructor (path: string, mode: number, fsync: boolean, snapshot: SnapshotId, validBytes: number) {
    this.#fsync = fsync
    this.#fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, mode)
    try {
      fchmodSync(this.#fd, mode)
      const created = fstatSync(this.#fd).size === 0
      this.#size = validBytes
      this.#headerBytes = encodeHeader(snapshot).byteLength
      if (validBytes === 0) this.reset(snapshot)
      else if (fstatSync(this.#fd).size > validBytes) this.#truncate(validBytes)
      // A journal created just now exists only once its directory entry is durable.
      if (created && fsync) syncDirectory(dirname(path))
    } catch (err) {
      closeSync(this.#fd)
      throw err
    }
  }

  /** Bytes of change records in the journal (the header not counted): what compaction would fold in. */
  get recordBytes (): number {
    return this.#size - this.#headerBytes
  }

  /** Appends one record and fsyncs. On failure the caller must close this writer and start over. */
  append (record: Buffer): void {
    writeAll(this.#fd, record)
    if (this.#fsync) fsyncSync(this.#fd)
    this.#size += record.byteLength
  }

  /** Starts the journal over for `snapshot`, once that snapshot is durable. */
  reset (snapshot: SnapshotId): void {
    ftruncateSync(this.#fd, 0)
    const header = encodeHeader(snapshot)
    writeAll(this.#fd, header)
    if (this.#fsync) fsyncSync(this.#fd)
    this.#size = this.#headerBytes = header.byteLength
  }

  /** Closes the descriptor. */
  close (): void {
    closeSync(this.#fd)
  }

  #truncate (length: number): void {
    ftruncateSync(this.#fd, length)
    if (this.#fsync) fsyncSync(this.#fd)
  }
}
