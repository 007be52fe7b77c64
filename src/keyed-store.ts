import { performance } from 'node:perf_hooks'
import { setImmediate } from 'node:timers/promises'
import { serialize } from 'node:v8'
import type { ResourceLimits } from 'node:worker_threads'
import { type BaseStoreOptions, invalid, type OptionOwner, resolveBaseOptions } from './base-options.js'
import { baseOf, bindStore } from './codec-frames.js'
import { acceptsLossyJson, isJsonCodec } from './codec-runtime.js'
import { StoreDecodeError, StoreError, type StoreErrorContext, StoreFencedError, StoreInvalidArgumentError, StoreReadError, StoreStateError } from './errors.js'
import { assertJsonFaithful } from './json-fidelity.js'
import { decodeKeyedFiles, readKeyedFiles, type SplitSnapshot } from './keyed-files.js'
import { journalPathFor } from './journal-format.js'
import { opsOfPart } from './keyed-part.js'
import { validateLoaded } from './validation.js'
import { PinnedWorker, type WithoutId } from './pinned-worker.js'
import type { PostgresLease } from './postgres-lease.js'
import { StoreCore } from './store-core.js'
import { kPinnedWorker } from './symbols.js'
import type { StoreStats } from './telemetry.js'
import { type CodecSpec, type JournalSettings, type KeyedRequest, type KeyedResponse, type KeyedWorkerConfig, type MirrorBase, SPLIT_MIN_BYTES, type WriteResult } from './protocol.js'
import { isPermanent, isStackOverflow, markPermanent, rebuildError, tooDeepToCopy } from './write-outcome.js'

/** Journal tuning for {@link KeyedStoreOptions.journal}. */
export interface JournalOptions {
  /** Compact once the journal holds this many bytes. @defaultValue 67108864 (64 MiB) */
  readonly compactBytes?: number
  /** ... or once it is this many times the size of the snapshot. @defaultValue 1 */
  readonly compactRatio?: number
}

/** Options of {@link KeyedStore}. */
export interface KeyedStoreOptions<V> extends BaseStoreOptions<Record<string, V>> {
  /** Debounce of the write that `set()` and `delete()` schedule, as `delaySave(fn, delayMs)`. @defaultValue 1000 */
  readonly delayMs?: number
  /**
   * Append each save's changes to `<path>.journal` (one write and one fsync) instead of rewriting
   * the file, and fold the journal into the file when it grows. JSON codecs only.
   * @defaultValue false
   */
  readonly journal?: boolean | JournalOptions
  /** Milliseconds one write, or the worker's part of a load, may take before the pinned worker is terminated. @defaultValue 60000 */
  readonly writeTimeout?: number
  /** Heap limits for the pinned worker. */
  readonly resourceLimits?: ResourceLimits
}

const DELETED: unique symbol = Symbol('deleted')
type Change<V> = V | typeof DELETED

/** What one write carries: the changes taken from the dirty set, kept to merge back on failure. */
interface Taken<V> {
  readonly changes: Map<string, Change<V>>
  readonly reinserted: Set<string>
}

/** How far the parts of one write have gone through its changes: re-set keys (deleted first), then the rest. */
interface Cursor<V> {
  readonly reinserted: SetIterator<string>
  readonly changes: MapIterator<[string, Change<V>]>
  /** The store's error context, made once for the write's checks. */
  readonly context: StoreErrorContext
  reinsertedDone: boolean
  done: boolean
}

/** A part of a write's changes as it is built. */
interface Part {
  readonly deletes: string[]
  readonly keys: string[]
  readonly values: unknown[]
}

// Milliseconds of this thread one part of a write's changes may take (checked, built, posted):
// a first save of a million entries posted at once blocked the loop for 300 ms to 2.9 s.
const PART_MS = 3
// Entries in a write's first part, which also bounds the parts after it from below, and at most
// in any part: a small entry costs 0.1-0.3 us to check, build and post.
const FIRST_PART = 1024
const MOST_PART = 16384

const KEYED_WRITER = new URL('../workers/keyed-writer.js', import.meta.url)
/** The pinned worker of a KeyedStore on PostgreSQL: one row per entry, no mirror. */
const POSTGRES_KEYED_WRITER = new URL('../workers/postgres-keyed.js', import.meta.url)

// PostgreSQL text holds neither NUL nor a lone surrogate (it would turn into U+FFFD): such a key
// would come back as another key, or fail every save it is part of.
const UNSTORABLE_KEY = /\0|\p{Surrogate}/u

/** The options a KeyedStore accepts beyond the base ones. */
const KEYED_OPTIONS = ['delayMs', 'journal', 'writeTimeout', 'resourceLimits'] as const

/**
 * A map persisted in one file, for large states: the main thread sends its pinned worker only the
 * entries changed since the last save, so a save costs the main thread O(changed entries). The
 * worker keeps a mirror of the state, applies the changes, and writes the whole file (or appends
 * the changes to a journal) with the same single-flight, debounced, atomic, durable discipline as
 * {@link Store}. The file is a plain object of entries, loadable by a `Store` with the same codec.
 */
export class KeyedStore<K extends string = string, V = unknown> {
  readonly #core: StoreCore<null>
  readonly #delayMs: number
  readonly #checkJson: { readonly lossy: boolean } | undefined
  readonly #spec: CodecSpec
  // A JSON codec with no compression or encryption around it: its bytes are JSON text, which a large load cuts into runs.
  readonly #splitsOnLoad: boolean
  readonly #worker: PinnedWorker<KeyedRequest, KeyedResponse>
  /** The lease on the store's rows, when its target is PostgreSQL. */
  readonly #lease: PostgresLease | undefined
  #data = new Map<K, V>()
  // Changes since the last acknowledged write, newest position last (as #data orders keys).
  #dirty = new Map<string, Change<V>>()
  // Keys deleted since the last acknowledged write: a re-set one must move to the end, as in #data.
  #reinserted = new Set<string>()
  // The worker generation whose mirror equals the last acknowledged state (0: none does).
  #syncedGeneration = 0
  #loaded = false

  constructor (options: KeyedStoreOptions<V>) {
    const base = resolveBaseOptions(options, { kind: 'KeyedStore', options: KEYED_OPTIONS })
    const { delayMs, journal, writeTimeout, resourceLimits } = options
    if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0)) invalid(base, 'delayMs', 'must be a finite number >= 0', delayMs)
    if (writeTimeout !== undefined && (!Number.isInteger(writeTimeout) || writeTimeout < 0)) invalid(base, 'writeTimeout', 'must be an integer >= 0', writeTimeout)
    if (baseOf(base.codec.spec).kind === 'raw') invalid(base, 'codec', 'cannot be codecs.raw() for a keyed store (the file holds an object of entries)', 'raw')
    const journalSettings = resolveJournal(base, journal)
    if (journalSettings !== undefined && !isJsonCodec(base.codec.spec)) invalid(base, 'journal', 'needs a JSON codec (codecs.json() or codecs.schema()): journal records are JSON', base.codec.spec.kind)
    if (base.target !== undefined) {
      // Each save is already a transaction of the changed rows: there is no file to append to.
      if (journalSettings !== undefined) invalid(base, 'journal', 'does not apply to a PostgreSQL target (each save writes only the changed rows, in one transaction)', journal)
      // Each entry is its own row of JSON text; a compressed or encrypted entry is not supported.
      if (base.codec.spec.kind !== 'json' && base.codec.spec.kind !== 'schema') invalid(base, 'codec', 'must be codecs.json() or codecs.schema() with a PostgreSQL target (each entry is stored as JSON text in its own row; compression and encryption are not applied to rows)', base.codec.spec.kind)
    }

    this.#delayMs = delayMs ?? 1000
    this.#checkJson = isJsonCodec(base.codec.spec) ? { lossy: acceptsLossyJson(base.codec.spec) } : undefined
    this.#spec = bindStore(base.codec.spec, base.name)
    this.#splitsOnLoad = this.#spec.kind === 'json' || this.#spec.kind === 'schema'
    const pg = base.target
    const config: KeyedWorkerConfig = {
      target: pg === undefined
        ? { kind: 'file', path: base.path, mode: base.mode, durability: base.durability }
        : { kind: 'postgres', connection: pg.connection, tables: pg.tables, key: base.name, describe: pg.describe },
      codec: this.#spec,
      journal: journalSettings
    }
    this.#worker = new PinnedWorker(pg === undefined ? KEYED_WRITER : POSTGRES_KEYED_WRITER, config, { timeoutMs: writeTimeout ?? 60_000, resourceLimits })
    this.#core = new StoreCore<null>(base, {
      perform: async () => { await this.#write() },
      // A refused save means another owner took over: every later save is refused at once.
      onFailure: (err) => { if (err instanceof StoreFencedError) this.#lease?.fenced() },
      stop: async () => { await this.#worker.terminate() },
      settled: async () => pg !== undefined || await this.#worker.settled(),
      kept: 'changes'
    })
    this.#lease = this.#core.lease
  }

  /** The name used in logs and errors. */
  get name (): string { return this.#core.name }

  /** The resolved path of the file this store owns. */
  get path (): string { return this.#core.path }

  /** The last write failure, or undefined once a later write succeeded. */
  get lastError (): Error | undefined { return this.#core.lastError }

  /** Counters: writes, bytes, failures, coalesced changes, and the last write's durations. */
  stats (): StoreStats { return this.#core.stats() }

  /** Number of entries. */
  get size (): number { return this.#data.size }

  /** The value for `key`, or undefined. */
  get (key: K): V | undefined { return this.#data.get(key) }

  /** True when `key` has a value. */
  has (key: K): boolean { return this.#data.has(key) }

  /** Iterates over `[key, value]` pairs in insertion order. */
  entries (): MapIterator<[K, V]> { return this.#data.entries() }

  /** Iterates over keys in insertion order. */
  keys (): MapIterator<K> { return this.#data.keys() }

  /** Iterates over values in insertion order. */
  values (): MapIterator<V> { return this.#data.values() }

  /** Iterates over `[key, value]` pairs in insertion order. */
  [Symbol.iterator] (): MapIterator<[K, V]> { return this.#data.entries() }

  /**
   * Sets `key` and schedules a debounced write. The value is captured when the write starts: mutate
   * a stored object only through another `set()`, or the change is not seen.
   * @throws `ERR_STORE_STATE` before {@link KeyedStore.load}; `ERR_STORE_INVALID_ARGUMENT` for a key
   * that is not a string or a value that is `undefined` (use `delete()`).
   */
  set (key: K, value: V): this {
    this.#core.assertOpen()
    if (typeof key !== 'string') throw new StoreInvalidArgumentError(`KeyedStore keys are strings, got ${typeof key}`, this.#core.context())
    // A file cannot hold undefined: it would reload as absent, or as null from a journal.
    if (value === undefined) throw new StoreInvalidArgumentError(`set(${JSON.stringify(key)}, undefined): a stored value cannot be undefined (a file would reload it as absent, or as null); use delete() to remove an entry`, this.#core.context())
    if (this.#lease !== undefined && UNSTORABLE_KEY.test(key)) throw new StoreInvalidArgumentError(`set(${JSON.stringify(key)}): a key stored in PostgreSQL cannot hold a NUL character or a lone surrogate (PostgreSQL text cannot store it as it is)`, this.#core.context())
    this.#assertLoaded('set()')
    if (this.#dirty.get(key) === DELETED) {
      // Deleted and set again in one window: the key moves to the end in #data, so in the file too.
      this.#dirty.delete(key)
      this.#reinserted.add(key)
    }
    this.#data.set(key, value)
    this.#dirty.set(key, value)
    this.#core.scheduler.schedule(null, this.#delayMs)
    return this
  }

  /** Deletes `key` and schedules a debounced write; false when it was not there. @throws `ERR_STORE_STATE` before {@link KeyedStore.load}. */
  delete (key: K): boolean {
    this.#core.assertOpen()
    this.#assertLoaded('delete()')
    if (!this.#data.delete(key)) return false
    this.#dirty.set(key, DELETED)
    this.#core.scheduler.schedule(null, this.#delayMs)
    return true
  }

  /** Deletes every entry and schedules a debounced write. @throws `ERR_STORE_STATE` before {@link KeyedStore.load}. */
  clear (): void {
    this.#core.assertOpen()
    this.#assertLoaded('clear()')
    for (const key of [...this.#data.keys()]) this.delete(key)
  }

  /**
   * Reads the file (snapshot, then journal) and decodes it on this thread, as `Store.load()` does,
   * then the pinned worker builds its mirror from the same bytes; the entries replace this store's
   * contents. A JSON file of 256 KiB or more is parsed a few milliseconds at a time, from runs of
   * members the worker finds, so the event loop keeps running. Must come before any change. Never
   * writes (a quarantine only renames).
   * @throws `ERR_STORE_DECODE` for a file or journal that cannot be decoded, or a journal that
   * extends another snapshot; `ERR_STORE_READ` for an unreadable file or a journal this process
   * must not trust; `ERR_STORE_STATE` after unsaved changes.
   */
  async load (): Promise<ReadonlyMap<K, V>> {
    this.#core.assertOpen()
    const { scheduler } = this.#core
    if (this.#dirty.size > 0 || scheduler.writing || scheduler.hasPending) {
      throw new StoreStateError('load() after changes would discard them; call load() first', this.#core.context())
    }
    const lease = this.#lease
    if (lease !== undefined) return await this.#core.loadOrQuarantine(async () => await this.#loadRows(lease), {})
    // Both files move aside together: the journal only makes sense over the snapshot it extends.
    return await this.#core.loadOrQuarantine(async () => await this.#load(), { movedTo: this.path, journalMovedTo: journalPathFor(this.path) })
  }

  async #load (): Promise<ReadonlyMap<K, V>> {
    const context = this.#core.context()
    // Started while the file is read: a large file goes to it first, and a thread takes ~30 ms to start.
    this.#worker.ensureStarted()
    let files = await readKeyedFiles(this.path, context)
    let split: SplitSnapshot | undefined
    if (files.snapshot !== undefined && files.snapshot.byteLength >= SPLIT_MIN_BYTES && this.#splitsOnLoad) {
      split = await this.#split(files.snapshot)
      // The bytes went to a worker that did not give them back: read the files again.
      if (split === undefined) files = await readKeyedFiles(this.path, context)
      else files = { snapshot: split.snapshot, journal: files.journal }
    }
    const state = await decodeKeyedFiles(this.#spec, files, context, split)
    await this.#validate(state.entries, context)
    // The worker builds its mirror from the same bytes, after this thread decoded them (the two
    // would only compete for the CPU): no entry ever crosses back by structured clone, which a
    // deeply nested value could not.
    const generation = this.#worker.ensureStarted()
    // Moved, not copied, when nothing decoded from them can still point into their memory.
    const movable = this.#checkJson !== undefined
    const snapshot = files.snapshot === undefined ? undefined : ownBytes(files.snapshot, movable)
    const journal = files.journal === undefined ? undefined : ownBytes(files.journal, true)
    let dispatched
    try {
      dispatched = this.#worker.request({ type: 'load', snapshot, journal }, [snapshot?.buffer, journal?.buffer].filter((b) => b !== undefined), 'load')
    } catch (err) {
      throw new StoreReadError(`could not hand the file to the worker (${(err as Error).message})`, this.#core.context(err))
    }
    // The worker's answer is not awaited: the entries are known, and its queue runs the next write
    // after this load. Should it fail, the next write rebuilds the mirror from the files.
    dispatched.response.then((response) => {
      if (response.type === 'loaded') return
      const { message, cause } = failureOf(response)
      this.#mirrorFailed(generation, new StoreReadError(`the worker could not build its mirror: ${message}`, this.#core.context(cause)))
    }, (err: unknown) => {
      this.#mirrorFailed(generation, new StoreReadError(`the worker did not finish loading (${(err as Error).message})`, this.#core.context(err)))
    })
    const ignored = state.ignoredJournal
    const { logger } = this.#core.options
    if (ignored?.why === 'empty') logger.warn({ store: this.name, path: this.path }, ignored.message)
    else if (ignored !== undefined) logger.debug({ store: this.name, path: this.path }, ignored.message)
    return this.#adopt(state.entries, generation)
  }

  /**
   * Takes the lease, then has the pinned worker read every row (the network wait, the rows' parsing
   * and their checks happen there) and send them back as the bytes of one JSON object, which this
   * thread decodes as it decodes a file (a large one cut into runs, parsed a slice at a time), no
   * entry cloned across threads.
   */
  async #loadRows (lease: PostgresLease): Promise<ReadonlyMap<K, V>> {
    const context = this.#core.context()
    let token: string
    try {
      token = await lease.generation()
    } catch (err) {
      if (err instanceof StoreError) throw err
      throw new StoreReadError(`could not read from ${this.#core.options.target?.describe ?? 'PostgreSQL'}: ${(err as Error).message}`, this.#core.context(err))
    }
    const generation = this.#worker.ensureStarted()
    let response: KeyedResponse
    try {
      response = await this.#worker.request({ type: 'fetch', generation: token }, [], 'load').response
    } catch (err) {
      throw new StoreReadError(`the worker did not finish reading the entries (${(err as Error).message})`, this.#core.context(err))
    }
    if (response.type !== 'fetched') {
      const { message, cause } = failureOf(response)
      if (response.type === 'load-failed' && response.stage === 'decode') throw new StoreDecodeError(message, this.#core.context(cause))
      throw new StoreReadError(message, this.#core.context(cause))
    }
    const snapshot = Buffer.from(response.snapshot.buffer, response.snapshot.byteOffset, response.snapshot.byteLength)
    const { members, runs } = response
    // No journal here, so no checksum is needed to match one.
    const split = members === undefined || runs === undefined || !this.#splitsOnLoad ? undefined : { snapshot, crc: undefined, members, runs }
    const state = await decodeKeyedFiles(this.#spec, { snapshot, journal: undefined }, context, split)
    await this.#validate(state.entries, context)
    return this.#adopt(state.entries, generation)
  }

  // The codec's validation sees the state as the file or the rows hold it: one object of entries.
  async #validate (entries: ReadonlyMap<string, unknown>, context: StoreErrorContext): Promise<void> {
    const { validation } = this.#core.options.codec
    if (validation !== undefined) await validateLoaded(validation, Object.fromEntries(entries), context)
  }

  // The loaded entries become the store's, in step with the worker `generation` that holds them too.
  #adopt (entries: Map<string, unknown>, generation: number): ReadonlyMap<K, V> {
    this.#data = entries as Map<K, V>
    this.#syncedGeneration = generation
    this.#loaded = true
    return this.#data
  }

  // The worker cuts the file into runs of members (a scan this thread would pay for in full), so this
  // thread can parse it a slice at a time. Moved there and back: never copied on this thread.
  async #split (snapshot: Buffer): Promise<SplitSnapshot | undefined> {
    const bytes = ownBytes(snapshot, true)
    try {
      const answer = await this.#worker.request({ type: 'split', snapshot: bytes }, [bytes.buffer], 'load').response
      if (answer.type !== 'split') return undefined
      const { snapshot: returned, crc, members, runs } = answer
      return { snapshot: Buffer.from(returned.buffer, returned.byteOffset, returned.byteLength), crc, members, runs }
    } catch {
      return undefined
    }
  }

  #mirrorFailed (generation: number, err: StoreReadError): void {
    if (this.#syncedGeneration === generation) this.#syncedGeneration = 0
    if (this.#core.closed) return // close() stopped the worker: nothing is left to rebuild
    this.#core.options.logger.error({ store: this.name, path: this.path, err }, 'the pinned worker could not load the file; the next write rebuilds its mirror from the file')
  }

  /** @internal The pinned worker, for tests that replace it. */
  get [kPinnedWorker] (): PinnedWorker<KeyedRequest, KeyedResponse> { return this.#worker }

  /** True once {@link KeyedStore.load} has run. */
  get loaded (): boolean { return this.#loaded }

  /** Waits for the in-flight write, then writes the pending changes; writes nothing when there are none. */
  async saveNow (): Promise<void> {
    await this.#core.flush()
  }

  /** Flushes pending changes, stops the pinned worker and releases the path. Later calls reject with `ERR_STORE_CLOSED`. */
  async close (): Promise<void> {
    await this.#core.close()
  }

  // A value that cannot be written (JSON would change it, it is too deep to copy) is left out of the
  // write, so it cannot hold back the other changes forever; the save still rejects, naming it.
  async #write (): Promise<void> {
    const taken = this.#take()
    const refused: Refused[] = []
    try {
      await this.#send(taken, refused)
    } catch (err) {
      this.#giveBack(taken)
      throw err
    }
    if (refused.length > 0) throw refusedError(refused)
  }

  #take (): Taken<V> {
    const taken = { changes: this.#dirty, reinserted: this.#reinserted }
    this.#dirty = new Map()
    this.#reinserted = new Set()
    return taken
  }

  // A failed write's changes go back under any newer ones made meanwhile, which win.
  #giveBack (taken: Taken<V>): void {
    for (const [key, change] of this.#dirty) taken.changes.set(key, change)
    for (const key of this.#reinserted) taken.reinserted.add(key)
    this.#dirty = taken.changes
    this.#reinserted = taken.reinserted
  }

  // False for a value JSON would change: it leaves the write and is named in the save's error.
  #writable (taken: Taken<V>, key: string, value: unknown, context: StoreErrorContext, refused: Refused[]): boolean {
    const checkJson = this.#checkJson
    if (checkJson === undefined) return true
    try {
      assertJsonFaithful(value, context, '', checkJson)
      return true
    } catch {
      // Checked again to name the entry: building its path for every entry made the check of a
      // first save of a million entries five times as long (110-220 against 16-36 ms).
      try {
        assertJsonFaithful(value, context, `[${JSON.stringify(key)}]`, checkJson)
        return true
      } catch (err) {
        if (!(err instanceof StoreError) || !isPermanent(err)) throw err
        taken.changes.delete(key)
        refused.push({ key, error: err })
        return false
      }
    }
  }

  // The next part of a write's changes, checked: at most `most`, and as many as fit in `budgetMs` of this thread.
  #nextPart (taken: Taken<V>, cursor: Cursor<V>, budgetMs: number, most: number, refused: Refused[]): Part {
    const part: Part = { deletes: [], keys: [], values: [] }
    const start = performance.now()
    for (let n = 1; ; n++) {
      const reinserted = cursor.reinsertedDone ? undefined : cursor.reinserted.next()
      if (reinserted !== undefined && reinserted.done !== true) {
        part.deletes.push(reinserted.value)
      } else {
        cursor.reinsertedDone = true
        const step = cursor.changes.next()
        if (step.done === true) {
          cursor.done = true
          return part
        }
        const [key, change] = step.value
        if (change === DELETED) {
          part.deletes.push(key)
        } else if (this.#writable(taken, key, change, cursor.context, refused)) {
          part.keys.push(key)
          part.values.push(change)
        }
      }
      if (n >= most || ((n & 63) === 0 && performance.now() - start >= budgetMs)) return part
    }
  }

  async #send (taken: Taken<V>, refused: Refused[]): Promise<void> {
    const generation = this.#worker.ensureStarted()
    const checkStart = performance.now()
    // A replaced worker, or one whose last write failed, rebuilds its mirror from the files first.
    const base: MirrorBase = generation === this.#syncedGeneration ? 'mirror' : 'disk'
    const cursor: Cursor<V> = { reinserted: taken.reinserted.values(), changes: taken.changes.entries(), context: this.#core.context(), reinsertedDone: false, done: false }
    const first = this.#nextPart(taken, cursor, PART_MS / 3, FIRST_PART, refused)
    const checkMs = performance.now() - checkStart
    // Every change was refused: there is nothing to write.
    if (first.deletes.length + first.keys.length === 0 && cursor.done) return
    // A PostgreSQL save runs under the lease's fencing token, taken first if needed (a wait, not
    // CPU); a file store does not await at all, so it still dispatches in the tick of its save.
    const token = this.#lease === undefined ? undefined : await fencingToken(this.#lease)
    try {
      await this.#core.write(checkMs, () => {
        // Small change sets (the usual ones) go in the write itself, posted in this tick.
        if (cursor.done) return this.#post(taken, { type: 'write', base, ops: opsOfPart(first), generation: token }, refused)
        const cost = { ms: 0 }
        const result = this.#sendInParts(taken, cursor, first, base, token, refused, cost)
        // Read once the write settled: every part's checking and posting on this thread.
        return { result, get postMs () { return cost.ms } }
      })
    } catch (err) {
      // The worker's mirror may now hold changes the file does not: rebuild it before the next write.
      this.#syncedGeneration = 0
      throw err
    }
    this.#syncedGeneration = generation
  }

  // A large change set goes in parts of a few ms each, the loop running between them, while the
  // worker applies each part as it comes; the write follows the last. A part takes the values as
  // they are when it is built; set() calls made meanwhile belong to the next write.
  async #sendInParts (taken: Taken<V>, cursor: Cursor<V>, first: Part, base: MirrorBase, token: string | undefined, refused: Refused[], cost: { ms: number }): Promise<WriteResult> {
    let start = performance.now()
    let part = first
    let index = 0
    const generation = this.#worker.ensureStarted()
    // Building a part is timed as it goes, posting it only after: each part's size comes from what
    // the last ones cost per entry, the dearer of the last two, so a burst of load shrinks the next.
    let perEntryMs = 0
    let most = FIRST_PART
    for (;;) {
      // A worker replaced after some parts lacks them: nothing more may reach the new one.
      if (!this.#worker.alive || this.#worker.generation !== generation) throw new Error('the worker stopped while the changes were being sent to it')
      this.#post(taken, { type: 'ops', index, base, part }, refused).result.catch(() => {})
      const end = performance.now()
      const entries = part.deletes.length + part.keys.length
      // The first part was built before: only its posting was timed here, so it sizes nothing.
      if (index > 0 && entries > 0) {
        perEntryMs = Math.max((end - start) / entries, perEntryMs * 0.7)
        most = Math.min(MOST_PART, Math.max(FIRST_PART, Math.floor(PART_MS / perEntryMs)))
      }
      cost.ms += end - start
      index++
      if (cursor.done) break
      await setImmediate()
      start = performance.now()
      part = this.#nextPart(taken, cursor, PART_MS / 2, most, refused)
    }
    // Posted in the tick of the last part: no other thread can have replaced the worker since.
    start = performance.now()
    const dispatched = this.#post(taken, { type: 'write', base, ops: [], staged: index, generation: token }, refused)
    cost.ms += performance.now() - start
    return await dispatched.result
  }

  // postMessage copies on this thread: a value too deep for it fails here, before any worker sees
  // it. Find which, leave them out like the values JSON refuses, post the rest.
  #post (taken: Taken<V>, request: WithoutId<Extract<KeyedRequest, { type: 'write' | 'ops' }>>, refused: Refused[]): { readonly result: Promise<WriteResult>, readonly postMs: number | undefined } {
    let dispatched
    try {
      dispatched = this.#worker.request(request)
    } catch (err) {
      if (!isStackOverflow(err)) throw err
      const copyable = (key: string, value: unknown): boolean => {
        if (canCopy(value)) return true
        taken.changes.delete(key)
        refused.push({ key, error: tooDeepToCopy(this.#core.context(err), `[${JSON.stringify(key)}]`) })
        return false
      }
      if (request.type === 'write') {
        dispatched = this.#worker.request({ ...request, ops: request.ops.filter(([key, ...change]) => change.length === 0 || copyable(key, change[0])) })
      } else {
        const { deletes, keys, values } = request.part
        const kept: Part = { deletes: [...deletes], keys: [], values: [] }
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i] ?? ''
          if (!copyable(key, values[i])) continue
          kept.keys.push(key)
          kept.values.push(values[i])
        }
        dispatched = this.#worker.request({ ...request, part: kept })
      }
    }
    return { postMs: dispatched.postMs, result: dispatched.response.then(asWriteResult) }
  }

  // A change before load() would make the next write replace the file's entries with this map alone.
  #assertLoaded (what: string): void {
    if (!this.#loaded) throw new StoreStateError(`${what} before load(): the file may hold entries a write would replace; call load() first`, this.#core.context())
  }
}

/** A changed entry left out of a write, and why. */
interface Refused {
  readonly key: string
  readonly error: StoreError
}

async function fencingToken (lease: PostgresLease): Promise<string> {
  const target = await lease.writeTarget(null, null)
  if (target.kind !== 'postgres') throw new Error('a lease gave a file target: this should not happen')
  return target.generation
}

function canCopy (value: unknown): boolean {
  try {
    serialize(value)
    return true
  } catch {
    return false
  }
}

// One error for the save's caller, permanent (writing the same value again fails the same way).
function refusedError (refused: readonly Refused[]): StoreError {
  const [first] = refused
  if (first === undefined) throw new Error('refusedError() without a refused entry: this should not happen')
  if (refused.length === 1) return first.error
  const keys = refused.map((r) => JSON.stringify(r.key)).join(', ')
  const error = new (first.error.constructor as new (message: string, context: object) => StoreError)(
    `${refused.length} entries were not written (${keys}); the first: ${first.error.message}`, { store: first.error.store, path: first.error.path, cause: first.error })
  return markPermanent(error)
}

// What a load's unexpected answer says went wrong, and the worker's error behind it, if it sent one.
function failureOf (response: KeyedResponse): { readonly message: string, readonly cause: Error | undefined } {
  const cause = 'cause' in response ? rebuildError(response.cause) : undefined
  return { message: `${'message' in response ? response.message : response.type}${cause === undefined ? '' : `: ${cause.message}`}`, cause }
}

// The keyed writer's answers, as the WriteResult every store's telemetry reads.
function asWriteResult (response: KeyedResponse): WriteResult {
  switch (response.type) {
    case 'written': return response.result
    // The answer to a part sent ahead: the write's own answer says whether it was used.
    case 'staged': return { ok: true, bytes: 0, encodeMs: 0, writeMs: 0 }
    case 'failed': return { ok: false, stage: 'write', message: `the worker failed to write: ${response.message}`, cause: response.cause }
    default: throw new Error(`unexpected answer ${JSON.stringify(response.type)} to write: this should not happen`)
  }
}

// Bytes that can be transferred: a Buffer that owns its whole ArrayBuffer when `movable`, else a copy.
function ownBytes (bytes: Buffer, movable: boolean): Uint8Array<ArrayBuffer> {
  const buffer = bytes.buffer
  const whole = bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength
  return movable && whole && buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(bytes)
}

function resolveJournal (owner: OptionOwner, journal: boolean | JournalOptions | undefined): JournalSettings | undefined {
  if (journal === undefined || journal === false) return undefined
  const options = journal === true ? {} : journal
  if (options === null || typeof options !== 'object') invalid(owner, 'journal', 'must be a boolean or { compactBytes, compactRatio }', options)
  const { compactBytes = 64 * 1024 * 1024, compactRatio = 1 } = options
  if (!Number.isInteger(compactBytes) || compactBytes < 1) invalid(owner, 'journal.compactBytes', 'must be a positive integer', compactBytes)
  if (typeof compactRatio !== 'number' || !(compactRatio > 0)) invalid(owner, 'journal.compactRatio', 'must be a number > 0', compactRatio)
  return { compactBytes, compactRatio }
}
