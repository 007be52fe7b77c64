import { readFile, unlink } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { type BaseStoreOptions, invalid, ownPath, resolveBaseOptions } from './base-options.js'
import { channels } from './channels.js'
import { type Codec, decode, isJsonCodec } from './codecs.js'
import {
  type StoreErrorContext,
  StoreClosedError,
  StoreDecodeError,
  StoreEncodeError,
  StoreInvalidOptionError,
  StoreReadError,
  StoreWriteError
} from './errors.js'
import { assertJsonFaithful } from './json-fidelity.js'
import type { Logger } from './logger.js'
import { releasePath } from './path-claims.js'
import { defaultPool, WriterPool } from './pool.js'
import type { WriteResult, WriteTask } from './protocol.js'
import { failureFromRejection, failureFromResult, isPermanent, markPermanent } from './write-outcome.js'
import { DiscardedError, WriteScheduler } from './write-scheduler.js'

/** Options of {@link Store}. */
export interface StoreOptions<T> extends BaseStoreOptions<T> {
  /** The worker pool that encodes and writes. @defaultValue one shared, lazily started pool */
  readonly pool?: WriterPool
  /**
   * Log a warning (once per store) when handing one value to a worker blocks the main thread this
   * many milliseconds: the state is large enough that a KeyedStore would serve it better.
   * `Infinity` turns it off. @defaultValue 10
   */
  readonly handoffWarnMs?: number
}

/** What a write will encode: a value given to save(), or a dataFn given to delaySave(). */
type Payload<T> = { readonly value: T } | { readonly dataFn: () => T }

/**
 * A value persisted in one file. Reads decode on the main thread; every write is encoded and
 * written atomically and durably by a worker thread, so the main thread only schedules work.
 */
export class Store<T = unknown> {
  readonly #name: string
  readonly #path: string
  readonly #codec: Codec<T>
  readonly #mode: number
  readonly #pool: WriterPool
  readonly #logger: Logger
  readonly #scheduler: WriteScheduler<Payload<T>>
  readonly #handoffWarnMs: number
  #warnedHandoff = false
  #closed = false
  #closing: Promise<void> | undefined

  constructor (options: StoreOptions<T>) {
    const base = resolveBaseOptions(options)
    if (options.pool !== undefined && !(options.pool instanceof WriterPool)) invalid('pool', 'must be a WriterPool', options.pool)
    const { handoffWarnMs = 10 } = options
    if (typeof handoffWarnMs !== 'number' || Number.isNaN(handoffWarnMs) || handoffWarnMs < 0) invalid('handoffWarnMs', 'must be a number >= 0 (Infinity turns the warning off)', handoffWarnMs)
    this.#handoffWarnMs = handoffWarnMs
    this.#path = base.path
    this.#name = base.name
    this.#codec = base.codec
    this.#mode = base.mode
    this.#logger = base.logger
    this.#pool = options.pool ?? defaultPool()
    this.#scheduler = new WriteScheduler<Payload<T>>({
      perform: async (payload) => { await this.#write(payload) },
      isPermanent,
      onDelayedError: (err) => {
        this.#logger.error({ store: this.#name, path: this.#path, err }, 'delayed write failed; the data is kept for the next save')
      },
      onFailure: (err) => { channels.writeError.publish({ store: this.#name, path: this.#path, error: err }) }
    })
    ownPath(base, this.#shutdownFlush)
  }

  /** The name used in logs and errors. */
  get name (): string {
    return this.#name
  }

  /** The resolved path of the file this store owns. */
  get path (): string {
    return this.#path
  }

  /** Reads and decodes the file; resolves `undefined` when it does not exist. */
  async load (): Promise<T | undefined> {
    this.#assertOpen()
    let bytes: Buffer
    try {
      bytes = await readFile(this.#path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StoreReadError(`could not read the file: ${(err as Error).message}`, this.#context(err))
    }
    try {
      return await decode(this.#codec.spec, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as T
    } catch (err) {
      throw new StoreDecodeError(`could not decode the file (${bytes.byteLength} bytes) with the ${this.#codec.spec.kind} codec: ${(err as Error).message}`, this.#context(err))
    }
  }

  /** Writes `value` now; resolves once a write holding `value` or a later value is durable. */
  async save (value: T): Promise<void> {
    this.#assertOpen()
    await this.#settle(this.#scheduler.request({ value }))
  }

  /**
   * Schedules a write of `dataFn()` at now + `delayMs`; each call moves the deadline (the latest
   * wins) and `dataFn` runs at write time. Failures are logged, never thrown.
   */
  delaySave (dataFn: () => T, delayMs: number): void {
    this.#assertOpen()
    if (typeof dataFn !== 'function') throw new StoreInvalidOptionError(`delaySave() needs a function, got ${typeof dataFn}`, this.#context())
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new StoreInvalidOptionError(`delaySave() needs a finite delay >= 0 in milliseconds, got ${String(delayMs)}`, this.#context())
    }
    this.#scheduler.schedule({ dataFn }, delayMs)
  }

  /** Waits for the in-flight write, then writes what is pending; writes nothing when nothing is. */
  async saveNow (): Promise<void> {
    this.#assertOpen()
    await this.#settle(this.#scheduler.flush())
  }

  /** Cancels what is pending, waits for the in-flight write, and deletes the file. */
  async remove (): Promise<void> {
    this.#assertOpen()
    await this.#scheduler.discard()
    try {
      await unlink(this.#path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreWriteError(`could not delete the file: ${(err as Error).message}`, this.#context(err))
    }
  }

  /** Flushes what is pending, then releases the path. Later calls of other methods reject with `ERR_STORE_CLOSED`. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async #close (): Promise<void> {
    this.#closed = true
    try {
      await this.#settle(this.#scheduler.flush())
    } finally {
      releasePath(this.#path)
    }
  }

  readonly #shutdownFlush = async (): Promise<void> => {
    if (this.#closing !== undefined) return await this.#closing
    await this.#settle(this.#scheduler.flush())
  }

  // The scheduler speaks plain errors for data dropped by remove(); callers get a StoreError.
  async #settle (flush: Promise<void>): Promise<void> {
    try {
      await flush
    } catch (err) {
      if (err instanceof DiscardedError) throw new StoreWriteError('the data was discarded by remove() before it was written', this.#context())
      throw err
    }
  }

  async #write (payload: Payload<T>): Promise<void> {
    const value = 'value' in payload ? payload.value : this.#callDataFn(payload.dataFn)
    const spec = this.#codec.spec
    if (isJsonCodec(spec)) assertJsonFaithful(value, this.#context())
    const task: WriteTask = { path: this.#path, mode: this.#mode, durability: 'full', codec: spec, value }
    // A Uint8Array that owns its whole buffer is moved, not copied; a view into a larger buffer
    // (such as Node's Buffer pool) cannot be detached safely, so it is copied.
    const transfer = value instanceof Uint8Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer
      ? [value.buffer]
      : undefined
    channels.writeStart.publish({ store: this.#name, path: this.#path })
    const start = performance.now()
    const { result: running, postMs } = this.#pool.dispatch(task, transfer)
    let result: WriteResult
    try {
      result = await running
    } catch (err) {
      throw failureFromRejection(err, this.#context())
    }
    if (!result.ok) throw failureFromResult(result, this.#context())
    channels.writeEnd.publish({
      store: this.#name,
      path: this.#path,
      bytes: result.bytes,
      encodeMs: result.encodeMs,
      writeMs: result.writeMs,
      mainMs: postMs,
      totalMs: performance.now() - start
    })
    if (postMs !== undefined && postMs >= this.#handoffWarnMs && !this.#warnedHandoff) {
      this.#warnedHandoff = true
      this.#logger.warn(
        { store: this.#name, path: this.#path, bytes: result.bytes, handoffMs: postMs, thresholdMs: this.#handoffWarnMs },
        'handing the whole value to a worker blocked the main thread (postMessage serializes all of it); for a large state, a KeyedStore sends only what changed')
    }
  }

  #callDataFn (dataFn: () => T): T {
    try {
      return dataFn()
    } catch (err) {
      this.#logger.error({ store: this.#name, path: this.#path, err }, 'dataFn threw; nothing was written')
      throw markPermanent(new StoreEncodeError(`the dataFn given to delaySave() threw, so nothing was written: ${(err as Error).message}`, this.#context(err)))
    }
  }

  #context (cause?: unknown): StoreErrorContext {
    return { store: this.#name, path: this.#path, cause }
  }

  #assertOpen (): void {
    if (this.#closed) throw new StoreClosedError('the store is closed', this.#context())
  }
}
