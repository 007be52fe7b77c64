import { constants } from 'node:fs'
import { type FileHandle, open, readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { recordOpener } from './codec-frames.js'
import { decode } from './codecs.js'
import { type StoreErrorContext, StoreDecodeError, StoreReadError } from './errors.js'
import {
  applyOps,
  entriesOfDecoded,
  journalFileProblem,
  journalPathFor,
  parseJournal,
  readJournalOver,
  snapshotIdOf
} from './journal-format.js'
import type { CodecSpec } from './protocol.js'

// How a KeyedStore reads its files on the main thread: the snapshot as Store.load() reads a file,
// the journal only when it is a file this process may trust. Reading never writes.

/** The bytes of a keyed store's files; undefined where a file does not exist. */
export interface KeyedFiles {
  readonly snapshot: Buffer | undefined
  readonly journal: Buffer | undefined
}

/** What a keyed store's files hold. */
export interface KeyedState {
  readonly entries: Map<string, unknown>
  /** Set when a journal beside the snapshot was ignored: why, for the log. */
  readonly ignoredJournal?: { readonly why: 'folded' | 'empty', readonly message: string } | undefined
}

/** A snapshot cut into runs of members by the keyed writer (workers/json-members.ts), with its bytes handed back. */
export interface SplitSnapshot {
  readonly snapshot: Buffer
  /** The snapshot's CRC-32, as `snapshotIdOf` gives it; undefined where no journal can be beside it. */
  readonly crc: number | undefined
  /** The members as array text and where each run of them lies; undefined when the file could not be split. */
  readonly members: Uint8Array | undefined
  readonly runs: Int32Array | undefined
}

/** Reads the snapshot and its journal; ERR_STORE_READ for anything but a missing file, or a journal this process must not trust. */
export async function readKeyedFiles (path: string, context: StoreErrorContext): Promise<KeyedFiles> {
  let snapshot: Buffer | undefined
  try {
    snapshot = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreReadError(`could not read the file: ${(err as Error).message}`, { ...context, cause: err })
  }
  return { snapshot, journal: await readJournal(journalPathFor(path), context) }
}

async function readJournal (journalPath: string, context: StoreErrorContext): Promise<Buffer | undefined> {
  let handle: FileHandle
  try {
    handle = await open(journalPath, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new StoreReadError(`the journal ${journalPath} is a symbolic link; a journal is never followed, so it was not read`, { ...context, cause: err })
    throw new StoreReadError(`could not read the journal ${journalPath}: ${(err as Error).message}`, { ...context, cause: err })
  }
  try {
    const problem = journalFileProblem(await handle.stat(), process.geteuid?.())
    if (problem !== undefined) {
      throw new StoreReadError(`the journal ${journalPath} ${problem}; it was not created by this store, so it is neither read nor written. Remove it if it is not yours`, context)
    }
    return await handle.readFile()
  } catch (err) {
    if (err instanceof StoreReadError) throw err
    throw new StoreReadError(`could not read the journal ${journalPath}: ${(err as Error).message}`, { ...context, cause: err })
  } finally {
    await handle.close()
  }
}

/**
 * Decodes the snapshot and replays the journal over it, by the rules in journal-format.ts;
 * ERR_STORE_DECODE when either cannot be decoded or the journal extends another snapshot.
 */
export async function decodeKeyedFiles (spec: CodecSpec, files: KeyedFiles, context: StoreErrorContext, split?: SplitSnapshot): Promise<KeyedState> {
  const { journal } = files
  const snapshot = split?.snapshot ?? files.snapshot
  let reading
  try {
    const parsed = journal === undefined ? undefined : parseJournal(journal, recordOpener(spec))
    if (parsed !== undefined) {
      // The snapshot's checksum is only needed to match a journal: without one it is not taken.
      const id = split?.crc === undefined ? (snapshot === undefined ? undefined : snapshotIdOf(snapshot)) : { bytes: split.snapshot.byteLength, crc: split.crc }
      reading = readJournalOver(id, parsed)
    }
  } catch (err) {
    throw new StoreDecodeError(`could not decode the journal: ${(err as Error).message}`, { ...context, cause: err })
  }
  let entries = split?.members === undefined || split.runs === undefined ? undefined : await entriesOfRuns(split.members, split.runs)
  // A file the runs could not account for is decoded whole, so its error is the one it always was.
  if (entries === undefined) {
    try {
      entries = snapshot === undefined ? new Map() : entriesOfDecoded(await decode(spec, new Uint8Array(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength)))
    } catch (err) {
      const size = snapshot === undefined ? 0 : snapshot.byteLength
      throw new StoreDecodeError(`could not decode the file (${size} bytes) with the ${spec.kind} codec: ${(err as Error).message}`, { ...context, cause: err })
    }
  }
  if (reading?.use === 'replay') for (const ops of reading.changes) applyOps(entries, ops)
  return { entries, ignoredJournal: reading?.use === 'ignore' ? { why: reading.why, message: reading.message } : undefined }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** How long one slice of a large load may keep the event loop, ms, before it yields. */
const SLICE_MS = 4

/**
 * The entries of a split snapshot, parsed a few runs at a time with the loop free between slices:
 * in file order, the last of a repeated key winning at the first one's place, as JSON.parse and
 * Object.keys give them. Undefined when any run does not parse to exactly its members: the caller
 * then decodes the whole file, and gives its error.
 */
async function entriesOfRuns (members: Uint8Array, runs: Int32Array): Promise<Map<string, unknown> | undefined> {
  const entries = new Map<string, unknown>()
  const count = Math.floor(runs.length / 3)
  let run = 0
  while (run < count) {
    const until = performance.now() + SLICE_MS
    try {
      do {
        const at = 3 * run
        const text = utf8.decode(members.subarray(runs[at], runs[at + 1]))
        // Each run is "key","value",... : the keyed writer wrote a comma over each member's colon.
        const list = JSON.parse(`[${text}]`) as unknown[]
        if (list.length !== 2 * (runs[at + 2] ?? 0)) return undefined
        for (let i = 0; i < list.length; i += 2) {
          const key = list[i]
          if (typeof key !== 'string') return undefined
          entries.set(key, list[i + 1])
        }
        run++
      } while (run < count && performance.now() < until)
    } catch {
      return undefined
    }
    if (run < count) await new Promise<void>((resolve) => { setImmediate(resolve) })
  }
  return entries
}
