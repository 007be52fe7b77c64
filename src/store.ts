import { readFile, unlink } from 'node:fs/promises'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { channels } from './channels.js'
import { type Codec, codecs, decode, isJsonCodec } from './codecs.js'
import { Deadline } from './debounce.js'
import {
  type StoreError,
  type StoreErrorContext,
  StoreClosedError,
  StoreDataCloneError,
  StoreDecodeError,
  StoreDurabilityError,
  StoreEncodeError,
  StoreInvalidOptionError,
  StorePathInUseError,
  StoreReadError,
  StoreWriteError
} from './errors.js'
import { findJsonFidelityProblem } from './json-fidelity.js'
import { type Logger, stderrLogger } from './logger.js'
import { claimPath, releasePath } from './path-claims.js'
import { defaultPool, WriterPool, WriteTimeoutError } from './pool.js'
import type { SerializedError, WriteResult, WriteTask } from './protocol.js'
import type { ShutdownRegister } from './shutdown.js'

/** Options of {@link Store}. */
export interface StoreOptions<T> {
  /** The file this store owns. Relative paths resolve against the working directory. */
  readonly path: string
  /** Called exactly once by the constructor with the store's flush, e.g. `registry.register`. */
  readonly shutdownRegister: ShutdownRegister
  /** How the value becomes bytes. @defaultValue codecs.json() */
  readonly codec?: Codec<T>
  /** Used in every log line and error. @defaultValue the resolved path */
  readonly name?: string
  /** File mode, set on the temp file before any data is written. @defaultValue 0o600 */
  readonly mode?: number
  /** The worker pool that encodes and writes. @defaultValue one shared, lazily started pool */
  readonly pool?: WriterPool
  /** A pino-compatible logger. @defaultValue JSON lines on stderr */
  readonly logger?: Logger
}

type Pending<T> =
  | { readonly seq: number, readonly kind: 'value', readonly value: T }
  | { readonly seq: number, readonly kind: 'fn', readonly fn: () => T }

interface Write {
  /** The newest request this write carries; every request up to it is satisfied when it succeeds. */
  readonly seq: number
  readonly promise: Promise<void>
}

/** A failure that writing the same data again cannot fix, so the data is not kept for a retry. */
const PERMANENT = new WeakSet<object>()

const noop = (): void => {}

function fail (name: string, message: string, value: unknown): never {
  throw new StoreInvalidOptionError(`options.${name} ${message}, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
}

function rebuild (data: SerializedError): Error {
  const err = new Error(data.message) as NodeJS.ErrnoException
  err.name = data.name
  if (data.stack !== undefined) err.stack = data.stack
  if (data.code !== undefined) err.code = data.code
  if (data.syscall !== undefined) err.syscall = data.syscall
  if (data.path !== undefined) err.path = data.path
  if (data.errno !== undefined) err.errno = data.errno
  return err
}

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
  readonly #deadline: Deadline
  #seq = 0
  #durableSeq = 0
  #pending: Pending<T> | undefined
  #current: Write | undefined
  #closed = false
  #closing: Promise<void> | undefined

  constructor (options: StoreOptions<T>) {
    if (options === null || typeof options !== 'object') throw new StoreInvalidOptionError(`options must be an object, got ${String(options)}`)
    const { path, shutdownRegister, codec, name, mode, pool, logger } = options
    if (typeof path !== 'string' || path.length === 0) fail('path', 'must be a non-empty string', path)
    if (typeof shutdownRegister !== 'function') fail('shutdownRegister', 'must be a function such as registry.register', shutdownRegister)
    if (codec !== undefined && (codec === null || typeof codec !== 'object' || typeof codec.spec?.kind !== 'string')) fail('codec', 'must come from codecs.json(), codecs.schema(), codecs.module() or codecs.raw()', codec)
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) fail('name', 'must be a non-empty string', name)
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) fail('mode', 'must be a file mode such as 0o600', mode)
    if (pool !== undefined && !(pool instanceof WriterPool)) fail('pool', 'must be a WriterPool', pool)
    if (logger !== undefined && (logger === null || typeof logger !== 'object' || ['error', 'warn', 'debug'].some((level) => typeof (logger as unknown as Record<string, unknown>)[level] !== 'function'))) {
      fail('logger', 'must have error, warn and debug methods', logger)
    }

    this.#path = resolve(path)
    this.#name = name ?? this.#path
    this.#codec = codec ?? codecs.json<T>()
    this.#mode = mode ?? 0o600
    this.#pool = pool ?? defaultPool()
    this.#logger = logger ?? stderrLogger
    this.#deadline = new Deadline(this.#onDeadline)

    if (!claimPath(this.path)) {
      throw new StorePathInUseError('another open store already owns this path; close() it first', this.#context())
    }
    try {
      shutdownRegister(this.#shutdownFlush)
    } catch (err) {
      releasePath(this.path)
      throw err
    }
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
      bytes = await readFile(this.path)
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
    const seq = ++this.#seq
    this.#pending = { seq, kind: 'value', value }
    this.#deadline.cancel()
    await this.#flushUntil(seq)
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
    this.#pending = { seq: ++this.#seq, kind: 'fn', fn: dataFn }
    this.#deadline.set(delayMs)
  }

  /** Waits for the in-flight write, then writes what is pending; writes nothing when nothing is. */
  async saveNow (): Promise<void> {
    this.#assertOpen()
    await this.#flushPending()
  }

  /** Cancels what is pending, waits for the in-flight write, and deletes the file. */
  async remove (): Promise<void> {
    this.#assertOpen()
    this.#deadline.cancel()
    this.#pending = undefined
    await this.#current?.promise.catch(noop)
    try {
      await unlink(this.path)
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
      await this.#flushPending()
    } finally {
      releasePath(this.path)
    }
  }

  readonly #shutdownFlush = async (): Promise<void> => {
    if (this.#closing !== undefined) return await this.#closing
    await this.#flushPending()
  }

  readonly #onDeadline = (): void => {
    const pending = this.#pending
    if (pending === undefined) return
    this.#flushUntil(pending.seq).catch((err: unknown) => {
      this.#logger.error({ store: this.name, path: this.path, err }, 'delayed write failed; the data is kept for the next save')
    })
  }

  async #flushPending (): Promise<void> {
    this.#deadline.cancel()
    // An earlier write's failure belongs to its own caller, not to this flush.
    await this.#current?.promise.catch(noop)
    const pending = this.#pending
    if (pending !== undefined) await this.#flushUntil(pending.seq)
  }

  // Single flight: at most one write runs; whoever finds none running starts one with the newest
  // pending data, so every request made during a write coalesces into the next one.
  async #flushUntil (target: number): Promise<void> {
    for (;;) {
      if (this.#durableSeq >= target) return
      const current = this.#current
      if (current !== undefined) {
        if (current.seq >= target) return await current.promise
        await current.promise.catch(noop)
        continue
      }
      if (this.#pending === undefined || this.#pending.seq < target) {
        throw new StoreWriteError('the data was discarded by remove() before it was written', this.#context())
      }
      this.#startWrite(this.#pending)
    }
  }

  #startWrite (taken: Pending<T>): void {
    this.#pending = undefined
    if (taken.kind === 'fn') this.#deadline.cancel()
    const promise = this.#write(taken).then(() => {
      if (taken.seq > this.#durableSeq) this.#durableSeq = taken.seq
    }, (err: unknown) => {
      // Keep unsaved data for the next saveNow(), delaySave() or shutdown flush, unless newer data
      // has replaced it or the failure would only repeat.
      if (this.#pending === undefined && !PERMANENT.has(err as object)) this.#pending = taken
      channels.writeError.publish({ store: this.name, path: this.path, error: err })
      throw err
    }).finally(() => {
      this.#current = undefined
    })
    promise.catch(noop)
    this.#current = { seq: taken.seq, promise }
  }

  async #write (taken: Pending<T>): Promise<void> {
    const value = taken.kind === 'value' ? taken.value : this.#callDataFn(taken.fn)
    const spec = this.#codec.spec
    if (isJsonCodec(spec)) {
      const problem = findJsonFidelityProblem(value)
      if (problem?.kind === 'cycle') {
        throw this.#permanent(new StoreEncodeError(`the value has a cycle at ${problem.at}; JSON cannot encode it`, this.#context()))
      }
      if (problem !== undefined) {
        throw this.#permanent(new StoreDataCloneError(
          `${problem.found} at ${problem.at}: a worker receives a structured clone, which drops prototypes, so toJSON() would not run and the file would differ from JSON.stringify. Convert it to plain data first (call toJSON() yourself), or use codecs.module() with an encoder that maps it`,
          this.#context()))
      }
    }
    const task: WriteTask = { path: this.path, mode: this.#mode, durability: 'full', codec: spec, value }
    // A Uint8Array that owns its whole buffer is moved, not copied; a view into a larger buffer
    // (such as Node's Buffer pool) cannot be detached safely, so it is copied.
    const transfer = value instanceof Uint8Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer
      ? [value.buffer]
      : undefined
    channels.writeStart.publish({ store: this.name, path: this.path })
    const start = performance.now()
    const running = this.#pool.run(task, transfer)
    const mainMs = performance.now() - start
    let result: WriteResult
    try {
      result = await running
    } catch (err) {
      throw this.#poolFailure(err)
    }
    if (!result.ok) throw this.#workerFailure(result)
    channels.writeEnd.publish({
      store: this.name,
      path: this.path,
      bytes: result.bytes,
      encodeMs: result.encodeMs,
      writeMs: result.writeMs,
      mainMs,
      totalMs: performance.now() - start
    })
  }

  #callDataFn (fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const error = new StoreEncodeError(`the dataFn given to delaySave() threw, so nothing was written: ${(err as Error).message}`, this.#context(err))
      this.#logger.error({ store: this.name, path: this.path, err }, 'dataFn threw; nothing was written')
      throw this.#permanent(error)
    }
  }

  #poolFailure (err: unknown): StoreError {
    if (err instanceof StoreClosedError) return new StoreClosedError('its writer pool is closed', this.#context(err))
    if ((err as Error | undefined)?.name === 'DataCloneError') {
      return this.#permanent(new StoreDataCloneError(
        `the value cannot be copied to a worker thread (${(err as Error).message}); remove functions, symbols, sockets and other host objects, or convert them to plain data first`,
        this.#context(err)))
    }
    if (err instanceof WriteTimeoutError) return new StoreWriteError(err.message, this.#context(err))
    return new StoreWriteError(`the worker died during the write (${(err as Error).message}); the next write uses a fresh worker`, this.#context(err))
  }

  #workerFailure (result: Extract<WriteResult, { ok: false }>): StoreError {
    const cause = rebuild(result.cause)
    const message = `${result.message}: ${cause.message}`
    switch (result.stage) {
      case 'encode': return this.#permanent(new StoreEncodeError(message, this.#context(cause)))
      case 'write': return new StoreWriteError(message, this.#context(cause))
      case 'dirsync': return new StoreDurabilityError(message, this.#context(cause))
      default: throw new Error(`unknown failure stage ${JSON.stringify((result as { stage: unknown }).stage)}: this should not happen`)
    }
  }

  #permanent<E extends StoreError>(err: E): E {
    PERMANENT.add(err)
    return err
  }

  #context (cause?: unknown): StoreErrorContext {
    return { store: this.name, path: this.path, cause }
  }

  #assertOpen (): void {
    if (this.#closed) throw new StoreClosedError('the store is closed', this.#context())
  }
}
