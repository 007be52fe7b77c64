import { readFileSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import type { KeyedOp, KeyedRequest, KeyedResponse, KeyedWorkerConfig, WriteResult } from '../src/protocol.js'
import { syncDirectory } from './atomic-write.js'
import { decode } from './encoders.js'
import { applyOps, encodeRecord, journalPathFor, JournalWriter, readJournal, type SnapshotId, snapshotIdOf } from './journal.js'
import { serializeError } from './serialize-error.js'
import { encodeAndWrite } from './writer.js'

// The pinned worker of one KeyedStore. It keeps a mirror of the state the main thread last had
// acknowledged, so the main thread sends only what changed; it applies the changes, then either
// appends them to the journal or encodes the whole mirror and writes it atomically (a snapshot).

const config = workerData as KeyedWorkerConfig
const port = parentPort
if (port === null) throw new Error('keyed-writer must run as a worker thread')
const fsync = config.durability !== 'none'
const journalPath = journalPathFor(config.path)

let mirror: Map<string, unknown> | undefined
let journal: JournalWriter | undefined
// The snapshot on disk that the journal extends; undefined until one is known to exist.
let snapshot: SnapshotId | undefined

class LoadFailure extends Error {
  constructor (readonly stage: 'read' | 'decode', readonly original: unknown) {
    super((original as Error).message)
  }
}

function readSnapshot (): Buffer | undefined {
  try {
    return readFileSync(config.path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new LoadFailure('read', err)
  }
}

async function decodeEntries (bytes: Buffer): Promise<Map<string, unknown>> {
  let decoded: unknown
  try {
    decoded = await decode(config.codec, bytes)
  } catch (err) {
    throw new LoadFailure('decode', err)
  }
  if (decoded instanceof Map) return decoded as Map<string, unknown>
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
    const found = Array.isArray(decoded) ? 'an array' : decoded === null ? 'null' : typeof decoded
    throw new LoadFailure('decode', new TypeError(`a keyed store's file must hold an object of entries, found ${found}`))
  }
  return new Map(Object.entries(decoded))
}

/** Rebuilds the mirror from the snapshot and the journal that extends it; undefined when there is no file. */
async function readDisk (): Promise<Map<string, unknown> | undefined> {
  const bytes = readSnapshot()
  snapshot = bytes === undefined ? undefined : snapshotIdOf(bytes)
  const state = bytes === undefined ? undefined : await decodeEntries(bytes)
  if (state === undefined || snapshot === undefined) return state
  // Read a journal even when this store was opened without the option: its changes were
  // acknowledged. (Without the option, the next snapshot holds them and removes the journal.)
  let contents: ReturnType<typeof readJournal>
  try {
    contents = readJournal(journalPath, snapshot)
  } catch (err) {
    throw new LoadFailure((err as NodeJS.ErrnoException).code === undefined ? 'decode' : 'read', err)
  }
  for (const ops of contents.records) applyOps(state, ops)
  if (config.journal === undefined) return state
  journal?.close()
  journal = undefined
  try {
    journal = new JournalWriter(journalPath, config.mode, fsync, snapshot, contents.validBytes)
  } catch (err) {
    throw new LoadFailure('read', err)
  }
  return state
}

function loadFailed (id: number, err: unknown): KeyedResponse {
  mirror = undefined
  const failure = err instanceof LoadFailure ? err : new LoadFailure('read', err)
  return { type: 'load-failed', id, stage: failure.stage, message: `could not ${failure.stage} the file`, cause: serializeError(failure.original) }
}

async function load (id: number): Promise<KeyedResponse> {
  try {
    const state = await readDisk()
    mirror = state ?? new Map()
    return { type: 'loaded', id, entries: state === undefined ? undefined : [...state] }
  } catch (err) {
    return loadFailed(id, err)
  }
}

async function writeSnapshot (): Promise<WriteResult> {
  const { result, data } = await encodeAndWrite({ path: config.path, mode: config.mode, durability: config.durability, codec: config.codec, value: Object.fromEntries(mirror ?? []) })
  if (!result.ok || data === undefined) return result
  snapshot = snapshotIdOf(data)
  if (config.journal === undefined) {
    // A journal left by an earlier run with the option on is folded into this snapshot now.
    return removeStaleJournal() ?? result
  }
  // The new snapshot is durable and holds every journaled change: start the journal over for it.
  // A crash before this completes leaves a journal naming the old snapshot, which load ignores.
  try {
    if (journal === undefined) journal = new JournalWriter(journalPath, config.mode, fsync, snapshot, 0)
    else journal.reset(snapshot)
  } catch (err) {
    journal?.close()
    journal = undefined
    return { ok: false, stage: 'write', message: 'the snapshot was written, but the journal could not be started over', cause: serializeError(err) }
  }
  return result
}

function removeStaleJournal (): WriteResult | undefined {
  try {
    unlinkSync(journalPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return { ok: false, stage: 'write', message: 'the snapshot was written, but an old journal beside it could not be removed', cause: serializeError(err) }
  }
  try {
    if (fsync) syncDirectory(dirname(config.path))
  } catch (err) {
    return { ok: false, stage: 'dirsync', message: 'an old journal was removed, but the directory fsync failed', cause: serializeError(err) }
  }
  return undefined
}

function append (ops: readonly KeyedOp[]): WriteResult {
  const start = performance.now()
  const record = encodeRecord(ops)
  const encoded = performance.now()
  try {
    if (journal === undefined) throw new Error('the journal is not open: this should not happen')
    journal.append(record)
  } catch (err) {
    // Never fsync this descriptor again after a failure (the kernel may have dropped the pages):
    // the next write starts over from a snapshot, which also discards any torn record.
    journal?.close()
    journal = undefined
    return { ok: false, stage: 'write', message: 'the journal append failed', cause: serializeError(err) }
  }
  return { ok: true, bytes: record.byteLength, encodeMs: encoded - start, writeMs: performance.now() - encoded }
}

function canAppend (): boolean {
  const settings = config.journal
  if (settings === undefined || journal === undefined || snapshot === undefined) return false
  const pending = journal.recordBytes
  return pending < settings.compactBytes && pending < settings.compactRatio * snapshot.bytes
}

async function write (request: Extract<KeyedRequest, { type: 'write' }>): Promise<KeyedResponse> {
  let mustSnapshot = false
  switch (request.base) {
    case 'full':
      // The file must become exactly these entries: a journal of the old file no longer applies.
      mirror = new Map(request.entries)
      mustSnapshot = true
      break
    case 'disk':
      try {
        mirror = await readDisk() ?? new Map()
      } catch (err) {
        const failure = err instanceof LoadFailure ? err : new LoadFailure('read', err)
        mirror = undefined
        return { type: 'written', id: request.id, appended: false, result: { ok: false, stage: 'write', message: 'could not rebuild the mirror from the file', cause: serializeError(failure.original) } }
      }
      break
    case 'mirror':
      if (mirror === undefined) throw new Error('asked to extend a mirror this worker does not have: this should not happen')
      break
    default:
      throw new Error(`unknown mirror base ${JSON.stringify((request as { base: unknown }).base)}: this should not happen`)
  }
  applyOps(mirror, request.ops)
  if (mustSnapshot || !canAppend()) return { type: 'written', id: request.id, appended: false, result: await writeSnapshot() }
  return { type: 'written', id: request.id, appended: true, result: append(request.ops) }
}

// Requests are handled one at a time, in order: the main side is single-flight, but a load and a
// write must never interleave inside the worker either.
let queue: Promise<void> = Promise.resolve()
port.on('message', (request: KeyedRequest) => {
  queue = queue.then(async () => {
    switch (request.type) {
      case 'load': port.postMessage(await load(request.id)); break
      case 'write': port.postMessage(await write(request)); break
      default: throw new Error(`unknown request ${JSON.stringify((request as { type: unknown }).type)}: this should not happen`)
    }
  })
})
