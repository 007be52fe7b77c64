import { readFileSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { workerData } from 'node:worker_threads'
import {
  applyOps,
  encodeJournalStart,
  encodeNextRecord,
  entriesOfDecoded,
  JournalCorruptError,
  journalPathFor,
  parseJournal,
  readJournalOver,
  type SnapshotId,
  snapshotIdOf
} from '../src/journal-format.js'
import type { KeyedOp, KeyedRequest, KeyedResponse, KeyedWorkerConfig, MirrorBase, WriteResult } from '../src/protocol.js'
import { atomicWriteSync, DirectorySyncError, syncDirectory } from './atomic-write.js'
import { baseOf, mapBase, recordOpener, wrapBytes } from '../src/codec-frames.js'
import { decode, encode } from './encoders.js'
import { encodeOps, JournalWriter, readJournalFile, UntrustedJournalError } from './journal.js'
import { RUN_BYTES, splitMembers } from './json-members.js'
import { JsonSnapshot } from './json-snapshot.js'
import { serveKeyedRequests } from './keyed-port.js'
import { joinOps, StagedOps } from './staged-ops.js'
import { serializeError } from './serialize-error.js'

// The pinned worker of one KeyedStore. It keeps a mirror of the state the main thread last had
// acknowledged, so the main thread sends only what changed; it applies the changes, then either
// appends them to the journal or encodes the whole mirror and writes it atomically (a snapshot).
//
// A compaction (any snapshot written while a journal exists) goes: append {"next": new snapshot}
// to the journal, rename the new snapshot in, start a new journal for it (by rename too). A crash
// at any point leaves files that load as the last acknowledged state (src/journal-format.ts).

const config = workerData as KeyedWorkerConfig
// This writer writes a local file and its journal; a PostgreSQL target has its own writer
// (workers/postgres-keyed.ts), chosen by the store when it starts its pinned worker.
const target = config.target.kind === 'file' ? config.target : wrongTarget(config.target.kind)

function wrongTarget (kind: string): never {
  throw new Error(`keyed-writer writes files, not a ${kind} target: this should not happen`)
}
const journalPath = journalPathFor(target.path)

/** What is at the journal path, as this worker last read or left it. */
type OnDisk =
  | { readonly kind: 'absent' }
  /** Holds nothing the snapshot lacks: replaced by a fresh journal before anything relies on it. */
  | { readonly kind: 'ignored' }
  /** Extends `snapshot` in the current format; its length is within [minBytes, maxBytes] and verified up to validBytes. */
  | { readonly kind: 'current', readonly validBytes: number, readonly minBytes: number, readonly maxBytes: number }
  /** Extends `snapshot` in the 0.1.0 format: rewritten in the current format (same changes) before any append. */
  | { readonly kind: 'legacy', readonly changes: ReadonlyArray<readonly KeyedOp[]> }

// Under the plain JSON codec its values are read only through `members`, which replaces those whose
// JSON it keeps by a marker.
let mirror: Map<string, unknown> | undefined
// With the plain JSON codec, each entry's JSON is kept between snapshots: a snapshot then costs
// this thread (and the CPU it shares with the event loop) the changed entries, not the whole state.
const base = baseOf(config.codec)
const members = base.kind === 'json' && (base.space === undefined || base.space === 0 || base.space === '') ? new JsonSnapshot() : undefined
// The snapshot on disk that the journal extends; undefined while there is no snapshot file.
let snapshot: SnapshotId | undefined
let onDisk: OnDisk = { kind: 'absent' }
let writer: JournalWriter | undefined
// Bytes of change records in the journal: what a compaction would fold in.
let recordBytes = 0
// Set once the journal could not be opened or appended to: the next write is a snapshot, whatever
// the journal's size, and the journal starts over after it.
let mustSnapshot = false

class LoadFailure extends Error {
  constructor (readonly stage: 'read' | 'decode', readonly original: unknown) {
    super((original as Error).message)
  }
}

function failed (message: string, err: unknown, stage: 'encode' | 'write' | 'dirsync' = 'write'): WriteResult {
  return { ok: false, stage, message, cause: serializeError(err) }
}

/** Builds the mirror and the journal's state from a snapshot's and a journal's bytes (undefined: no file). */
async function adopt (snapshotBytes: Uint8Array | undefined, journalBytes: Uint8Array | undefined): Promise<void> {
  const id = snapshotBytes === undefined ? undefined : snapshotIdOf(snapshotBytes)
  let state: Map<string, unknown>
  try {
    state = snapshotBytes === undefined ? new Map() : entriesOfDecoded(await decode(config.codec, snapshotBytes))
  } catch (err) {
    throw new LoadFailure('decode', err)
  }
  let next: OnDisk = { kind: journalBytes === undefined ? 'absent' : 'ignored' }
  let nextRecordBytes = 0
  try {
    const parsed = journalBytes === undefined ? undefined : parseJournal(journalBytes, recordOpener(config.codec))
    const reading = parsed === undefined ? undefined : readJournalOver(id, parsed)
    if (reading?.use === 'replay') {
      for (const ops of reading.changes) applyOps(state, ops)
      const { validBytes, totalBytes, version } = reading.journal
      next = version === 2 ? { kind: 'current', validBytes, minBytes: totalBytes, maxBytes: totalBytes } : { kind: 'legacy', changes: reading.changes }
      nextRecordBytes = reading.recordBytes
    }
  } catch (err) {
    throw new LoadFailure(err instanceof JournalCorruptError ? 'decode' : 'read', err)
  }
  writer?.close()
  writer = undefined
  members?.clear()
  mirror = state
  snapshot = id
  onDisk = next
  recordBytes = nextRecordBytes
}

/** Rebuilds the mirror from the files on disk. */
async function readDisk (): Promise<void> {
  let snapshotBytes: Buffer | undefined
  let journalBytes: Buffer | undefined
  try {
    try {
      snapshotBytes = readFileSync(target.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    journalBytes = readJournalFile(journalPath)
  } catch (err) {
    throw new LoadFailure('read', err)
  }
  await adopt(snapshotBytes, journalBytes)
}

/** The writer for the journal that extends `snapshot`, reopening, creating or rewriting it as its state requires. */
function ensureWriter (): JournalWriter {
  if (writer !== undefined) return writer
  if (snapshot === undefined) throw new Error('a journal without a snapshot: this should not happen')
  switch (onDisk.kind) {
    case 'current':
      writer = JournalWriter.reopen(journalPath, target.durability, onDisk.validBytes, onDisk.minBytes, onDisk.maxBytes)
      break
    case 'legacy': {
      // Re-encoded with JSON.stringify, as 0.1.0 wrote them (in the store's frames, if any): the
      // same changes, the same meaning.
      const codec = mapBase(config.codec, () => ({ kind: 'json' }))
      const records: Buffer[] = []
      let offset = encodeJournalStart(snapshot).byteLength
      for (const ops of onDisk.changes) {
        for (const op of ops) {
          const record = encodeOps(codec, [op], { snapshot, offset })
          records.push(record)
          offset += record.byteLength
        }
      }
      writer = JournalWriter.create(journalPath, target.mode, target.durability, snapshot, records)
      recordBytes = records.reduce((sum, record) => sum + record.byteLength, 0)
      break
    }
    case 'absent':
    case 'ignored':
      writer = JournalWriter.create(journalPath, target.mode, target.durability, snapshot)
      recordBytes = 0
      break
    default:
      throw new Error(`unknown journal state ${JSON.stringify((onDisk as { kind: unknown }).kind)}: this should not happen`)
  }
  onDisk = { kind: 'current', validBytes: writer.size, minBytes: writer.size, maxBytes: writer.size }
  return writer
}

/** Appends `record`; after a failure the descriptor is dropped (never fsynced again) and the next write is a snapshot. */
function appendRecord (record: Buffer): void {
  const journal = ensureWriter()
  const before = journal.size
  try {
    journal.append(record)
  } catch (err) {
    journal.close()
    writer = undefined
    // The failed append may have left part of the record: a torn tail, cut off by the next reopen.
    onDisk = { kind: 'current', validBytes: before, minBytes: before, maxBytes: before + record.byteLength }
    mustSnapshot = true
    throw err
  }
  onDisk = { kind: 'current', validBytes: journal.size, minBytes: journal.size, maxBytes: journal.size }
}

function removeJournal (): void {
  try {
    unlinkSync(journalPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (target.durability === 'full') syncDirectory(dirname(journalPath))
}

async function writeSnapshot (): Promise<WriteResult> {
  const start = performance.now()
  let data: string | Uint8Array
  try {
    data = members === undefined ? await encode(config.codec, Object.fromEntries(mirror ?? [])) : wrapBytes(config.codec, members.bytes(mirror ?? new Map()), { kind: 'file' })
  } catch (err) {
    return failed('the encoder failed', err, 'encode')
  }
  // Encoded to UTF-8 once: the fingerprint and the write would each convert a string again.
  if (typeof data === 'string') data = Buffer.from(data)
  const id = snapshotIdOf(data)
  const encoded = performance.now()
  const journalExists = writer !== undefined || onDisk.kind !== 'absent'
  if (journalExists && snapshot !== undefined) {
    // From this record on, the journal says its changes may already be in snapshot `id`.
    try {
      appendRecord(encodeNextRecord(id))
    } catch (err) {
      return failed('the journal could not record the coming snapshot, so none was written', err)
    }
  }
  let dirsync: NodeJS.ErrnoException | undefined
  try {
    atomicWriteSync(target.path, data, target.mode, target.durability)
  } catch (err) {
    if (!(err instanceof DirectorySyncError)) return failed('the atomic write failed', err)
    dirsync = err.original // renamed in: the journal must start over for it all the same
  }
  snapshot = id
  writer?.close()
  writer = undefined
  recordBytes = 0
  mustSnapshot = false
  try {
    if (config.journal !== undefined) {
      writer = JournalWriter.create(journalPath, target.mode, target.durability, id)
      onDisk = { kind: 'current', validBytes: writer.size, minBytes: writer.size, maxBytes: writer.size }
    } else if (journalExists) {
      // A journal left by a run with the option on is folded into this snapshot: remove it.
      removeJournal()
      onDisk = { kind: 'absent' }
    }
  } catch (err) {
    // The old journal names this snapshot as its successor, so it is ignored; the next write replaces it.
    onDisk = { kind: 'ignored' }
    return failed('the snapshot was written, but the journal could not be started over', err)
  }
  if (dirsync !== undefined) return failed('the file was renamed into place, but the directory fsync failed: durability unknown', dirsync, 'dirsync')
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
  return { ok: true, bytes, encodeMs: encoded - start, writeMs: performance.now() - encoded }
}

// Opening the journal and appending to it fail alike: a file this process must not trust is
// refused as it is (the next write reads it again, and refuses it again if it must); after any
// other failure no change goes to that journal again until the whole state is in a snapshot, so a
// journal that may have a torn tail or have been swapped under the store is never extended.
function appendFailed (err: unknown, step: 'opened or created' | 'appended to'): WriteResult {
  if (err instanceof UntrustedJournalError) return failed('the journal was not appended to', err)
  mustSnapshot = true
  return failed(`the journal could not be ${step}, so these changes were not written; the next write rewrites the whole file (a snapshot) and starts a new journal`, err)
}

function append (ops: readonly KeyedOp[]): WriteResult {
  const start = performance.now()
  let offset: number
  try {
    // Opened (or created) first: an encrypted record is bound to the offset it is written at.
    offset = ensureWriter().size
  } catch (err) {
    return appendFailed(err, 'opened or created')
  }
  let record: Buffer
  try {
    if (snapshot === undefined) throw new Error('a journal without a snapshot: this should not happen')
    record = encodeOps(config.codec, ops, { snapshot, offset })
  } catch (err) {
    return failed('the encoder failed on the journal record', err, 'encode')
  }
  const encoded = performance.now()
  try {
    appendRecord(record)
  } catch (err) {
    return appendFailed(err, 'appended to')
  }
  recordBytes += record.byteLength
  return { ok: true, bytes: record.byteLength, encodeMs: encoded - start, writeMs: performance.now() - encoded }
}

function canAppend (): boolean {
  const settings = config.journal
  if (settings === undefined || snapshot === undefined || mustSnapshot) return false
  return recordBytes < settings.compactBytes && recordBytes < settings.compactRatio * snapshot.bytes
}

async function load (request: Extract<KeyedRequest, { type: 'load' }>): Promise<KeyedResponse> {
  try {
    await adopt(request.snapshot, request.journal)
    return { type: 'loaded', id: request.id }
  } catch (err) {
    mirror = undefined
    const failure = err instanceof LoadFailure ? err : new LoadFailure('read', err)
    return { type: 'load-failed', id: request.id, stage: failure.stage, message: `could not ${failure.stage} the file`, cause: serializeError(failure.original) }
  }
}

function split (request: Extract<KeyedRequest, { type: 'split' }>): KeyedResponse {
  const { snapshot } = request
  const found = splitMembers(snapshot, RUN_BYTES)
  // The checksum a journal beside the file is checked against, taken here rather than on the main thread.
  return { type: 'split', id: request.id, snapshot, crc: snapshotIdOf(snapshot).crc, members: found?.members, runs: found?.runs }
}

/**
 * Makes the mirror the state `base` says the main thread last had acknowledged; a failure's result
 * when it cannot (the mirror is then dropped, so nothing extends it).
 */
async function prepareMirror (base: MirrorBase): Promise<WriteResult | undefined> {
  if (base !== 'disk' && base !== 'mirror') throw new Error(`unknown mirror base ${JSON.stringify(base as unknown)}: this should not happen`)
  // On 'mirror' without one, this worker's load failed after the main thread's succeeded: the files hold that state.
  if (base === 'disk' || mirror === undefined) {
    try {
      await readDisk()
    } catch (err) {
      mirror = undefined
      return failed(`could not ${base === 'disk' ? 'rebuild' : 'build'} the mirror from the file`, err instanceof LoadFailure ? err.original : err)
    }
  }
  if (mirror === undefined) return failed('asked to extend a mirror this worker does not have', new Error('no mirror: this should not happen'))
  return undefined
}

function applyToMirror (ops: readonly KeyedOp[]): void {
  if (mirror === undefined) throw new Error('no mirror to apply changes to: this should not happen')
  applyOps(mirror, ops)
  members?.forget(ops)
}

// The parts of the coming write received so far, and why its write must fail, if it must.
const staged = new StagedOps()
let stagedFailure: WriteResult | undefined

// Each part is applied on arrival, so the mirror is up to date by the time the write comes.
async function stage (request: Extract<KeyedRequest, { type: 'ops' }>): Promise<KeyedResponse> {
  if (request.index === 0) {
    // Parts of a save whose write never came are in the mirror: the files hold the acknowledged state.
    if (!staged.empty) mirror = undefined
    stagedFailure = await prepareMirror(request.base)
  }
  const { ops, intact } = staged.add(request.index, request.part)
  if (!intact) stagedFailure ??= failed('a part of the changes did not reach this worker, so none was written', new Error(`part ${request.index} came out of order`))
  if (stagedFailure === undefined) {
    try {
      applyToMirror(ops)
    } catch (err) {
      stagedFailure = failed('the changes could not be applied', err)
    }
  }
  return { type: 'staged', id: request.id }
}

async function write (request: Extract<KeyedRequest, { type: 'write' }>): Promise<KeyedResponse> {
  const answer = (result: WriteResult, appended = false): KeyedResponse => ({ type: 'written', id: request.id, appended, result })
  const count = request.staged ?? 0
  const abandoned = count === 0 && !staged.empty
  const parts = staged.take(count)
  const failure = stagedFailure
  stagedFailure = undefined
  if (parts === undefined || (count > 0 && failure !== undefined)) {
    // Some of this write's changes may be in the mirror, others not: it holds no state anyone had.
    mirror = undefined
    return answer(failure ?? failed('some of the changes did not reach this worker, so none was written', new Error(`${count} parts were sent ahead of the write`)))
  }
  if (count === 0) {
    if (abandoned) mirror = undefined
    const notReady = await prepareMirror(request.base)
    if (notReady !== undefined) return answer(notReady)
  }
  applyToMirror(request.ops)
  if (!canAppend()) return answer(await writeSnapshot())
  return answer(append(joinOps(parts, request.ops)), true)
}

async function handle (request: KeyedRequest): Promise<KeyedResponse> {
  switch (request.type) {
    case 'load': return await load(request)
    case 'ops': return await stage(request)
    case 'write': return await write(request)
    case 'fetch': throw new Error('a fetch is for a PostgreSQL target: this should not happen')
    case 'split': return split(request)
    default: throw new Error(`unknown request ${JSON.stringify((request as { type: unknown }).type)}: this should not happen`)
  }
}

// The bytes a split answer carries move back to the main thread instead of being copied.
function transferOf (response: KeyedResponse): ArrayBuffer[] {
  if (response.type !== 'split') return []
  return [response.snapshot.buffer, response.members?.buffer, response.runs?.buffer].filter((b) => b !== undefined)
}

serveKeyedRequests(async (request) => {
  const response = await handle(request)
  return { response, transfer: transferOf(response) }
})
