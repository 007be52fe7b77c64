import { readFile, unlink } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { type BaseStoreOptions, invalid, resolveBaseOptions } from './base-options.js'
import { bindStore } from './codec-frames.js'
import { decode } from './codecs.js'
import { StoreDecodeError, StoreError, StoreFencedError, StoreEncodeError, StoreInvalidArgumentError, StoreReadError, StoreVersionError, StoreWriteError } from './errors.js'
import { handOff } from './handoff.js'
import { defaultPool, WriterPool } from './pool.js'
import { kDispatch, kTargetSettled } from './symbols.js'
import type { CodecSpec, WriteTask } from './protocol.js'
import { StoreCore } from './store-core.js'
import { validateLoaded } from './validation.js'
import type { StoreStats } from './telemetry.js'
import { type Envelope, envelopeCodec, resolveVersioning, unwrap, type VersionOptions, type Versioning, wrap } from './versioning.js'
import { markPermanent } from './write-outcome.js'

/** Options of {@link Store}. */
export interface StoreOptions<T> extends BaseStoreOptions<T>, VersionOptions<T> {
  /** The worker pool that encodes and writes. @defaultValue one shared, lazily started pool */
  readonly pool?: WriterPool
  /**
   * Log a warning (once per store) when checking, encoding or copying one value of 64 KiB or more
   * for a worker blocks the main thread this many milliseconds: the state is large enough that a
   * KeyedStore would serve it better. `Infinity` turns it off. @defaultValue 10
   */
  readonly handoffWarnMs?: number
  /**
   * Skip the write when the encoded bytes equal what this store last wrote (the worker compares
   * SHA-256 digests), counted as `unchanged` in `stats()`. @defaultValue true
   */
  readonly skipUnchanged?: boolean
}

/** Below this many encoded bytes, a slow hand-off is CPU contention, not a state too large for Store. */
const HANDOFF_WARN_MIN_BYTES = 64 * 1024

/** The options a Store accepts beyond the base ones; anything else is a mistake worth an error. */
const STORE_OPTIONS = ['pool', 'handoffWarnMs', 'skipUnchanged', 'version', 'minorVersion', 'migrate'] as const

/** What a write will encode: a value given to save(), or a dataFn given to delaySave(). */
type Payload<T> = { readonly value: T } | { readonly dataFn: () => T }

/**
 * A value persisted in one file. Reads decode on the main thread. A write is checked and copied
 * (JSON: encoded) on the main thread when it starts, in time linear in the value; a worker thread
 * runs every other encoder and writes atomically and durably.
 */
export class Store<T = unknown> {
  readonly #core: StoreCore<Payload<T>>
  readonly #spec: CodecSpec
  readonly #pool: WriterPool
  readonly #handoffWarnMs: number
  readonly #skipUnchanged: boolean
  readonly #versioning: Versioning<T> | undefined
  // SHA-256 of the bytes this store last wrote; unknown (undefined) after a failure or a remove().
  #lastHash: string | undefined
  #warnedHandoff = false

  constructor (options: StoreOptions<T>) {
    const base = resolveBaseOptions(options, { kind: 'Store', options: STORE_OPTIONS })
    const { pool, handoffWarnMs = 10, skipUnchanged = true } = options
    if (pool !== undefined && !(pool instanceof WriterPool)) invalid(base, 'pool', 'must be a WriterPool', pool)
    if (typeof handoffWarnMs !== 'number' || Number.isNaN(handoffWarnMs) || handoffWarnMs < 0) invalid(base, 'handoffWarnMs', 'must be a number >= 0 (Infinity turns the warning off)', handoffWarnMs)
    if (typeof skipUnchanged !== 'boolean') invalid(base, 'skipUnchanged', 'must be a boolean', skipUnchanged)
    this.#versioning = resolveVersioning(options, base)
    this.#spec = bindStore(this.#versioning === undefined ? base.codec.spec : envelopeCodec(base.codec.spec), base.name)
    this.#pool = pool ?? defaultPool()
    this.#handoffWarnMs = handoffWarnMs
    this.#skipUnchanged = skipUnchanged
    this.#core = new StoreCore<Payload<T>>(base, {
      perform: async (payload) => { await this.#write(payload) },
      onFailure: (err) => {
        this.#lastHash = undefined
        // A refused write means another owner took over: every later write is refused at once.
        if (err instanceof StoreFencedError) this.#core.lease?.fenced()
      },
      // Bounded by writeTimeout again: past it, close() keeps the lock rather than hand over the file.
      settled: async () => base.target !== undefined || await this.#pool[kTargetSettled](base.path),
      kept: 'data'
    })
  }

  /** The name used in logs and errors. */
  get name (): string {
    return this.#core.name
  }

  /** The resolved path of the file this store owns. */
  get path (): string {
    return this.#core.path
  }

  /** The last write failure, or undefined once a later write succeeded. */
  get lastError (): Error | undefined {
    return this.#core.lastError
  }

  /** Counters: writes, bytes, failures, coalesced and unchanged saves, and the last write's durations. */
  stats (): StoreStats {
    return this.#core.stats()
  }

  /**
   * Reads and decodes the file; resolves `undefined` when it does not exist. A versioned store
   * migrates older data (the next save writes the current version).
   */
  async load (): Promise<T | undefined> {
    this.#core.assertOpen()
    return await this.#core.loadOrQuarantine(async () => await this.#load(), { movedTo: this.path })
  }

  async #load (): Promise<T | undefined> {
    const spec = this.#spec
    let bytes: Uint8Array
    try {
      const lease = this.#core.lease
      if (lease !== undefined) {
        const row = await lease.readRow()
        if (row === undefined) return undefined
        bytes = row
      } else {
        bytes = await readFile(this.path)
      }
    } catch (err) {
      if (err instanceof StoreError) throw err
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StoreReadError(`could not read the file: ${(err as Error).message}`, this.#core.context(err))
    }
    let decoded: unknown
    try {
      decoded = await decode(spec, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    } catch (err) {
      throw new StoreDecodeError(`could not decode the file (${bytes.byteLength} bytes) with the ${spec.kind} codec: ${(err as Error).message}`, this.#core.context(err))
    }
    return await validateLoaded(this.#core.options.codec.validation, await this.#unwrap(decoded), this.#core.context())
  }

  async #unwrap (decoded: unknown): Promise<T> {
    const versioning = this.#versioning
    // An unversioned store never unwraps: its data is the file, whatever its shape. A versioned store
    // reads a plain file (written before it was versioned) as data; the next save wraps it.
    const envelope = versioning === undefined ? undefined : unwrap(decoded)
    if (versioning === undefined || envelope === undefined) return decoded as T
    const { version, minorVersion, data } = envelope
    if (version > versioning.version) {
      throw new StoreVersionError(`the file holds version ${version}, newer than this code's ${versioning.version}; refusing to load (and later overwrite) data this code does not understand`, this.#core.context())
    }
    if (version === versioning.version && minorVersion >= versioning.minorVersion) return data as T
    if (versioning.migrate === undefined) {
      throw new StoreVersionError(`the file holds version ${version}.${minorVersion}, older than ${versioning.version}.${versioning.minorVersion}, and no migrate function was given`, this.#core.context())
    }
    try {
      return await versioning.migrate(version, minorVersion, data)
    } catch (err) {
      throw new StoreVersionError(`migrate(${version}, ${minorVersion}, data) threw: ${(err as Error).message}`, this.#core.context(err))
    }
  }

  /** Writes `value` now; resolves once a write holding `value` or a later value is durable. */
  async save (value: T): Promise<void> {
    await this.#core.request({ value })
  }

  /**
   * Schedules a write of `dataFn()` at now + `delayMs` (capped by `maxDelay`); each call moves the
   * deadline (the latest wins) and `dataFn` runs at write time. Failures are logged, never thrown.
   * The deadline does not keep the process alive: when nothing else does, the data is written as
   * the event loop empties.
   * @throws `ERR_STORE_INVALID_ARGUMENT` for a `dataFn` that is not a function or a bad delay.
   */
  delaySave (dataFn: () => T, delayMs: number): void {
    this.#core.assertOpen()
    if (typeof dataFn !== 'function') throw new StoreInvalidArgumentError(`delaySave() needs a function, got ${typeof dataFn}`, this.#core.context())
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new StoreInvalidArgumentError(`delaySave() needs a finite delay >= 0 in milliseconds, got ${String(delayMs)}`, this.#core.context())
    }
    this.#core.scheduler.schedule({ dataFn }, delayMs)
  }

  /** Waits for the in-flight write, then writes what is pending; writes nothing when nothing is. */
  async saveNow (): Promise<void> {
    await this.#core.flush()
  }

  /** Cancels what is pending, waits for the in-flight write, and deletes the file. */
  async remove (): Promise<void> {
    this.#core.assertOpen()
    await this.#core.scheduler.discard()
    this.#lastHash = undefined
    await this.#core.ready('write')
    if (this.#core.lease !== undefined) return await this.#core.lease.deleteRow()
    try {
      await unlink(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreWriteError(`could not delete the file: ${(err as Error).message}`, this.#core.context(err))
    }
  }

  /** Flushes what is pending, then releases the path. Later calls of other methods reject with `ERR_STORE_CLOSED`. */
  async close (): Promise<void> {
    await this.#core.close()
  }

  async #write (payload: Payload<T>): Promise<void> {
    const value = 'value' in payload ? payload.value : this.#callDataFn(payload.dataFn)
    const checkStart = performance.now()
    const versioning = this.#versioning
    const data: T | Envelope<T> = versioning === undefined ? value : wrap(versioning, this.name, value)
    // Checked and copied in this one synchronous step, so what is checked is exactly what is
    // written, however long the task then waits for a starting or busy worker.
    const handoff = handOff(this.#spec, data, value, this.#core.context())
    const checkMs = performance.now() - checkStart
    const { options, lease } = this.#core
    const task: WriteTask = {
      target: lease === undefined
        ? { kind: 'file', path: options.path, mode: options.mode, durability: options.durability }
        : await lease.writeTarget(versioning?.version ?? null, versioning?.minorVersion ?? null),
      codec: this.#spec,
      value: handoff.value,
      form: handoff.form,
      previousHash: this.#skipUnchanged ? this.#lastHash : undefined,
      hashOutput: this.#skipUnchanged,
      check: handoff.check
    }
    const { result, mainMs } = await this.#core.write(checkMs, () => this.#pool[kDispatch](task, handoff.transfer))
    this.#lastHash = result.hash
    // Small values only cross the threshold when the CPU is contended: that is noise, not advice.
    if (mainMs !== undefined && mainMs >= this.#handoffWarnMs && result.bytes >= HANDOFF_WARN_MIN_BYTES && !this.#warnedHandoff) {
      this.#warnedHandoff = true
      options.logger.warn(
        { store: this.name, path: this.path, bytes: result.bytes, handoffMs: mainMs, checkMs, thresholdMs: this.#handoffWarnMs },
        'encoding or copying the whole value for a worker blocked the main thread (every save copies all of it); for a large state, a KeyedStore sends only what changed')
    }
  }

  #callDataFn (dataFn: () => T): T {
    try {
      return dataFn()
    } catch (err) {
      // Logged once, by the scheduler's delayed-write report, which says nothing is kept.
      throw markPermanent(new StoreEncodeError(`the dataFn given to delaySave() threw, so nothing was written: ${(err as Error).message}`, this.#core.context(err)))
    }
  }
}
