import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { baseOf, wrapBytes } from '../src/codec-frames.js'
import { encodeChangeRecord, encodeJournalStart, journalFileProblem, type SnapshotId } from '../src/journal-format.js'
import type { CodecSpec, Durability, KeyedOp } from '../src/protocol.js'
import { syncDirectory, tempPathFor } from './atomic-write.js'

// The keyed writer's side of the journal: creating one, reopening one it has read, appending, and
// encoding a save's changes with the store's codec. The format itself is in src/journal-format.ts.

/** The journal file at a store's journal path is one this process must not trust (planted by someone else). */
export class UntrustedJournalError extends Error {}

/** Opens `path` for reading or appending without following a symlink, and refuses a file it must not trust. */
function openTrusted (path: string, flags: number): number {
  let fd: number
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UntrustedJournalError(`${path} is a symbolic link; a journal is never followed`)
    throw err
  }
  const problem = journalFileProblem(fstatSync(fd), process.geteuid?.())
  if (problem !== undefined) {
    closeSync(fd)
    throw new UntrustedJournalError(`${path} ${problem}; it was not created by this store, so it is neither read nor written`)
  }
  return fd
}

/** The journal's bytes, or undefined when there is none; refuses a file this process must not trust. */
export function readJournalFile (path: string): Buffer | undefined {
  let fd: number
  try {
    fd = openTrusted(path, constants.O_RDONLY)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}

function writeAllAt (fd: number, data: Uint8Array, position: number): void {
  let offset = 0
  while (offset < data.byteLength) offset += writeSync(fd, data, offset, data.byteLength - offset, position + offset)
}

/** An open journal that extends one snapshot; appends records durably at the end it knows. */
export class JournalWriter {
  readonly #fd: number
  readonly #fsync: boolean
  #size: number

  private constructor (fd: number, size: number, fsync: boolean) {
    this.#fd = fd
    this.#size = size
    this.#fsync = fsync
  }

  /**
   * Creates a journal for `snapshot` (holding `records` after its header) as the data file is
   * created: an exclusive temp file with an unpredictable name, mode set before any byte, written,
   * fsynced, renamed over `path` (replacing whatever was there, never writing through it).
   */
  static create (path: string, mode: number, durability: Durability, snapshot: SnapshotId, records: readonly Buffer[] = []): JournalWriter {
    const temp = tempPathFor(path)
    const fd = openSync(temp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
    let renamed = false
    try {
      fchmodSync(fd, mode)
      const start = Buffer.concat([encodeJournalStart(snapshot), ...records])
      writeAllAt(fd, start, 0)
      if (durability !== 'none') fsyncSync(fd)
      renameSync(temp, path)
      renamed = true
      if (durability === 'full') syncDirectory(dirname(path))
      return new JournalWriter(fd, start.byteLength, durability !== 'none')
    } catch (err) {
      closeSync(fd)
      if (!renamed) try { unlinkSync(temp) } catch {}
      throw err
    }
  }

  /**
   * Reopens the journal this worker read, after checking it is still a file of its own and still
   * `minBytes` to `maxBytes` long (else someone changed it since), and cuts off the torn tail
   * after `validBytes`, so the next record follows the last one that verified.
   */
  static reopen (path: string, durability: Durability, validBytes: number, minBytes: number, maxBytes: number): JournalWriter {
    const fd = openTrusted(path, constants.O_RDWR)
    try {
      const size = fstatSync(fd).size
      if (size < minBytes || size > maxBytes) throw new UntrustedJournalError(`${path} is ${size} bytes, not the ${minBytes === maxBytes ? minBytes : `${minBytes} to ${maxBytes}`} it had when it was read: it changed under the store`)
      if (size > validBytes) {
        ftruncateSync(fd, validBytes)
        if (durability !== 'none') fsyncSync(fd)
      }
      return new JournalWriter(fd, validBytes, durability !== 'none')
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** The journal's length: where the next record goes. */
  get size (): number {
    return this.#size
  }

  /** Appends one record and fsyncs. On failure the caller must close this writer and never fsync it again. */
  append (record: Buffer): void {
    writeAllAt(this.#fd, record, this.#size)
    if (this.#fsync) fsyncSync(this.#fd)
    this.#size += record.byteLength
  }

  /** Closes the descriptor. */
  close (): void {
    try { closeSync(this.#fd) } catch {}
  }
}

// fast-json-stringify is CommonJS and pulls in ajv: loaded on the first schema journal only.
const require = createRequire(import.meta.url)
type Serialize = (value: unknown) => string
const serializers = new Map<string, Serialize>()

function setsSerializer (codec: CodecSpec): Serialize {
  const spec = baseOf(codec)
  switch (spec.kind) {
    case 'json': return (sets) => JSON.stringify(sets)
    case 'schema': {
      let serialize = serializers.get(spec.id)
      if (serialize === undefined) {
        // A record holds only the entries one save set, so the root's `required` cannot apply;
        // every entry is still encoded by its own sub-schema, exactly as in a snapshot.
        const { required: _required, ...root } = spec.schema as { required?: unknown }
        const fastJson = require('fast-json-stringify') as typeof import('fast-json-stringify').default
        serialize = fastJson(root, { largeArrayMechanism: spec.largeArrayMechanism, largeArraySize: spec.largeArraySize }) as Serialize
        serializers.set(spec.id, serialize)
      }
      return serialize
    }
    default:
      throw new Error(`a journal needs a JSON codec, not ${spec.kind}: this should not happen`)
  }
}

/** Where a change record goes: the snapshot its journal extends and the record's offset (an encrypted record is bound to both). */
export interface RecordPlace {
  readonly snapshot: SnapshotId
  readonly offset: number
}

/**
 * Encodes one save's ops as a journal record at `place`, the entries set being encoded by the
 * store's codec and the payload put in its compression and encryption frames (which need `place`).
 */
export function encodeOps (spec: CodecSpec, ops: readonly KeyedOp[], place?: RecordPlace): Buffer {
  const deletes: string[] = []
  // No prototype: a key such as "__proto__" is an entry like any other.
  const sets = Object.create(null) as Record<string, unknown>
  for (const op of ops) {
    if (op.length === 1) deletes.push(op[0])
    else sets[op[0]] = op[1]
  }
  const json = setsSerializer(spec)(sets)
  if (typeof json !== 'string') throw new TypeError(`the codec encoded a journal record as ${typeof json}, not JSON text`)
  if (spec === baseOf(spec)) return encodeChangeRecord(deletes, json)
  if (place === undefined) throw new Error('a wrapped journal record needs its place: this should not happen')
  return encodeChangeRecord(deletes, json, (payload) => wrapBytes(spec, payload, { kind: 'journal', snapshot: place.snapshot, offset: place.offset }))
}
