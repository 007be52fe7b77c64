// The only thing src/ and workers/ share: the shapes of what crosses between them.
// Type-only on purpose: the worker must never pull main-thread state in with a runtime import.

import type { KeyObject } from 'node:crypto'
import type { FidelityProblem } from './json-problems.js'

/** A codec that turns a value into bytes, described as plain data. */
export type BaseCodecSpec =
  | { readonly kind: 'json', readonly space?: number | string | undefined, readonly lossy?: boolean | undefined }
  | {
    readonly kind: 'schema'
    /** Cache key for the compiled serializer inside each worker. */
    readonly id: string
    readonly schema: object
    readonly largeArrayMechanism: 'default' | 'json-stringify'
    readonly largeArraySize: number
    readonly lossy?: boolean | undefined
  }
  | { readonly kind: 'module', readonly url: string, readonly encode: string, readonly decode: string }
  | { readonly kind: 'raw' }

/** A compression wrapper around a codec's bytes (Node's zlib, in the worker). */
export type CompressionSpec =
  | { readonly kind: 'gzip', readonly level: number, readonly inner: BaseCodecSpec }
  | { readonly kind: 'brotli', readonly quality: number, readonly inner: BaseCodecSpec }

/**
 * One AES-256 key of an encrypted codec. The key is a `KeyObject`: it crosses to a worker thread
 * by structured clone, and neither `util.inspect` nor `JSON.stringify` prints its bytes.
 */
export interface CodecKey {
  /** Written in each file's header, so a file names the key that decrypts it. */
  readonly id: string
  readonly key: KeyObject
}

/** AES-256-GCM around a codec's (possibly compressed) bytes. */
export interface EncryptionSpec {
  readonly kind: 'encrypted'
  /** Encrypt with the first; decrypt with whichever the file's header names. */
  readonly keys: readonly CodecKey[]
  readonly inner: BaseCodecSpec | CompressionSpec
  /** The store's name, bound when a store is built: part of the associated data. */
  readonly associated?: string | undefined
}

/** A codec described as plain data, so it can cross to a worker thread. */
export type CodecSpec = BaseCodecSpec | CompressionSpec | EncryptionSpec

/** How far a write goes before it is acknowledged. */
export type Durability = 'full' | 'file' | 'none'

/**
 * How a write's `value` travels to the worker: `'encoded'`, the bytes to write, already encoded on
 * the main thread (JSON text, raw data); `'serialized'`, a `v8.serialize` copy taken at write
 * start, rebuilt and then encoded in the worker.
 */
export type WriteForm = 'encoded' | 'serialized'

/**
 * Where a store's writes go, as the worker receives it: today a local file, written atomically
 * (temp file, fsync, rename, directory fsync). The one place a new target is added.
 */
interface FileTarget {
  readonly kind: 'file'
  /** The resolved path of the file. */
  readonly path: string
  /** The file's mode, set on the temp file before any byte is written. */
  readonly mode: number
  readonly durability: Durability
}

/**
 * How a thread reaches PostgreSQL, as plain data (a pool object cannot cross to a worker): each
 * thread keeps its own bounded pool for it.
 */
export interface PostgresConnection {
  readonly connectionString?: string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly user?: string | undefined
  readonly password?: string | undefined
  /** Server-side limit on one statement, in milliseconds; 0: none. */
  readonly statementTimeout: number
  /** Milliseconds to wait for a connection. */
  readonly connectTimeout: number
  /** Most connections one thread opens to this server. */
  readonly poolSize: number
}

/**
 * A store's row in PostgreSQL, written only while `generation` is still the lease's fencing token
 * (checked in the write's WHERE), and acknowledged after COMMIT.
 */
interface PostgresTarget {
  readonly kind: 'postgres'
  readonly connection: PostgresConnection
  /** The quoted, schema-qualified tables: one row per Store, one lease per store. */
  readonly tables: PostgresTables
  /** The store's key: its row's (or its entries') `name`. */
  readonly key: string
  /** The fencing token this owner holds, as a decimal string (a bigint). */
  readonly generation: string
  /** The data's version, when the store is versioned (for queries; the bytes carry it too). */
  readonly version: number | null
  readonly minorVersion: number | null
  /** Host, port and database, for messages; never the password. */
  readonly describe: string
}

/** The quoted, schema-qualified names of the tables a PostgreSQL target uses. */
export interface PostgresTables {
  readonly rows: string
  readonly leases: string
}

/** Every target a worker can write to. */
export type WriteTarget = FileTarget | PostgresTarget

/**
 * The JSON check a worker runs on a write's deserialized copy before encoding it (codecs.schema()):
 * the copy is what is written, so it is what is judged, and the main thread pays only the copy.
 */
export interface JsonCheck {
  /** Accept what JSON silently drops or changes, as the codec's `lossy` option says. */
  readonly lossy: boolean | undefined
  /** Objects a walk without an identity set may visit (the copy's byte length bounds it). */
  readonly budget: number
  /** `'data'`: check that member of the copy (a versioning envelope's), so paths name places in the saved value. */
  readonly member: 'data' | undefined
}

/** One write, as the worker receives it. */
export interface WriteTask {
  readonly target: WriteTarget
  readonly codec: CodecSpec
  /** What to write, in the form `form` says. */
  readonly value: unknown
  /** How `value` travels. */
  readonly form: WriteForm
  /** SHA-256 (base64) of the bytes this store last wrote: equal bytes are not written again. */
  readonly previousHash?: string | undefined
  /** Return the SHA-256 of the bytes even without a previousHash (the first write of a store). */
  readonly hashOutput?: boolean | undefined
  /** Check the `'serialized'` copy before encoding it; nothing is written when the check finds a problem. */
  readonly check?: JsonCheck | undefined
}

/** Which step of a write failed; decides the error class on the main side. */
type FailureStage = 'encode' | 'write' | 'dirsync' | 'fenced'

/** An error flattened to data: a structured clone drops an error's class and its `code`. */
export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly stack?: string | undefined
  readonly code?: string | undefined
  readonly syscall?: string | undefined
  readonly path?: string | undefined
  readonly errno?: number | undefined
}

/** What the worker answers for one write. */
export type WriteResult =
  | {
    readonly ok: true
    readonly bytes: number
    readonly encodeMs: number
    readonly writeMs: number
    /** SHA-256 (base64) of the bytes, when the writer computed it. */
    readonly hash?: string | undefined
    /** True when the bytes equalled `previousHash`, so nothing was written. */
    readonly skipped?: boolean | undefined
  }
  | {
    readonly ok: false
    readonly stage: FailureStage
    readonly message: string
    readonly cause: SerializedError
  }
  /** The task's JSON check refused the copy; the main thread turns the problem into its error. */
  | { readonly ok: false, readonly stage: 'check', readonly problem: FidelityProblem }

/** One change to a keyed state: `[key]` deletes the key, `[key, value]` sets it. */
export type KeyedOp = readonly [key: string] | readonly [key: string, value: unknown]

/**
 * Some of a write's changes as flat lists, which cost the sending thread a third of as many
 * `[key, value]` pairs to build and copy: the keys to delete, then the keys to set with their values.
 */
export interface KeyedPart {
  readonly deletes: readonly string[]
  readonly keys: readonly string[]
  /** The value of each of `keys`, at the same index. */
  readonly values: readonly unknown[]
}

/** When the keyed writer folds its journal into a new snapshot. */
export interface JournalSettings {
  /** Compact once the journal holds this many bytes. */
  readonly compactBytes: number
  /** ... or once it is this many times the size of the snapshot. */
  readonly compactRatio: number
}

/**
 * A KeyedStore's entries in PostgreSQL, as its pinned worker is started with them: each write
 * carries the fencing token it runs under, since a lease can be taken again during the worker's life.
 */
type KeyedPostgresTarget = Omit<PostgresTarget, 'generation' | 'version' | 'minorVersion'>

/** What a keyed writer is started with (its `workerData`): one file or one store's rows, for the worker's whole life. */
export interface KeyedWorkerConfig {
  readonly target: Extract<WriteTarget, { kind: 'file' }> | KeyedPostgresTarget
  readonly codec: CodecSpec
  readonly journal: JournalSettings | undefined
}

/**
 * How the worker's mirror relates to the state the main thread last had acknowledged: `mirror`
 * (it is that state) or `disk` (rebuild it from the files, which hold that state).
 */
export type MirrorBase = 'mirror' | 'disk'

/** A request to the keyed writer. */
export type KeyedRequest =
  /** Build the mirror from these bytes of the snapshot and the journal (undefined: no such file), as the main thread read them. */
  | { readonly type: 'load', readonly id: number, readonly snapshot: Uint8Array | undefined, readonly journal: Uint8Array | undefined }
  /** Cut a large JSON snapshot into runs of members for the main thread to parse a slice at a time (the bytes come back). */
  | { readonly type: 'split', readonly id: number, readonly snapshot: Uint8Array<ArrayBuffer> }
  /**
   * Part `index` (from 0) of the next write's changes, sent ahead of it so that no one message
   * carries a huge change set: the worker applies it while the main thread prepares the next part.
   * Part 0 carries the write's `base`; a part 0 after parts whose write never came drops them.
   */
  | { readonly type: 'ops', readonly id: number, readonly index: number, readonly base: MirrorBase, readonly part: KeyedPart }
  | {
    readonly type: 'write'
    readonly id: number
    readonly base: MirrorBase
    /** The changes after those of the `staged` parts sent ahead; all of them when none were. */
    readonly ops: readonly KeyedOp[]
    /** How many 'ops' parts came ahead with the rest of this write's changes: if fewer arrived, nothing is written. @defaultValue 0 */
    readonly staged?: number | undefined
    /** The fencing token the write runs under (PostgreSQL target only). */
    readonly generation?: string | undefined
  }
  /** Read every entry of the store's rows, under the lease of `generation` (PostgreSQL target only). */
  | { readonly type: 'fetch', readonly id: number, readonly generation: string }

/** From this size a keyed store's JSON snapshot is cut into runs and parsed in slices on load: below it, one JSON.parse takes a few ms. */
export const SPLIT_MIN_BYTES = 256 * 1024

/** The keyed writer's answer to the request with the same `id`. */
export type KeyedResponse =
  | { readonly type: 'loaded', readonly id: number }
  /** An 'ops' part was taken in; whether it and the write agree is the write's answer. */
  | { readonly type: 'staged', readonly id: number }
  /**
   * The entries read by a 'fetch', as the bytes of a file holding them (one JSON object, in order),
   * and from SPLIT_MIN_BYTES on, its `members` and `runs` as a 'split' answer gives them.
   */
  | { readonly type: 'fetched', readonly id: number, readonly snapshot: Uint8Array, readonly members: Uint8Array<ArrayBuffer> | undefined, readonly runs: Int32Array<ArrayBuffer> | undefined }
  /** `members` and `runs` as workers/json-members.ts makes them (undefined when the file cannot be split), and the bytes' CRC-32. */
  | { readonly type: 'split', readonly id: number, readonly snapshot: Uint8Array<ArrayBuffer>, readonly crc: number, readonly members: Uint8Array<ArrayBuffer> | undefined, readonly runs: Int32Array<ArrayBuffer> | undefined }
  | { readonly type: 'load-failed', readonly id: number, readonly stage: 'read' | 'decode', readonly message: string, readonly cause: SerializedError }
  | { readonly type: 'written', readonly id: number, readonly result: WriteResult, readonly appended: boolean }
  /** Handling or answering the request threw: every request gets an answer, this one at once. */
  | { readonly type: 'failed', readonly id: number, readonly message: string, readonly cause: SerializedError }
