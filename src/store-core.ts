import { rename } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import type { ResolvedBaseOptions } from './base-options.js'
import { type StoreErrorContext, StoreClosedError, StoreDecodeError, StoreReadError, StoreWriteError } from './errors.js'
import { type Ownership, takeOwnership } from './ownership.js'
import { PostgresLease } from './postgres-lease.js'
import type { WriteResult } from './protocol.js'
import { type StoreStats, WriteTelemetry } from './telemetry.js'
import { failureFromRejection, failureFromResult, isPermanent } from './write-outcome.js'
import { DiscardedError, WriteScheduler } from './write-scheduler.js'

/** What a store class supplies to its core: only what differs between stores. */
export interface StoreCoreHooks<P> {
  /** Performs one write of `payload`; rejects with the StoreError its caller sees. */
  readonly perform: (payload: P) => Promise<void>
  /** Called once per failed write, after it was counted. */
  readonly onFailure?: (err: unknown) => void
  /** Stops what the store runs besides its writes (a pinned worker), after the last flush of close(). */
  readonly stop?: () => Promise<void>
  /**
   * Resolves false when a thread terminated mid-write may still write the target: close() then
   * keeps the store's ownership (its lock) instead of handing the file to another owner.
   */
  readonly settled?: () => Promise<boolean>
  /** What a failed delayed write keeps, for the log line: `'data'`, `'changes'`. */
  readonly kept: string
}

/** A write handed to a worker: its answer as a {@link WriteResult}, and what posting it cost this thread. */
export interface DispatchedWrite {
  readonly result: Promise<WriteResult>
  /** Milliseconds spent posting (undefined when the post happens later, from a queue). */
  readonly postMs: number | undefined
}

/** The acknowledged outcome of a write. */
export type WriteSuccess = Extract<WriteResult, { ok: true }>

/**
 * What every store shares, composed into `Store` and `KeyedStore`: resolved options, ownership of
 * the target (the file's lock, shutdown registration, exit watch), the write scheduler, telemetry
 * around each write, close and flush, quarantine of undecodable files, and the error context. A
 * store class supplies how a write is performed and loaded, and what close must stop.
 */
export class StoreCore<P> {
  /** The store's validated options. */
  readonly options: ResolvedBaseOptions<unknown>
  /** Single flight, coalescing, the debounced deadline and retries. */
  readonly scheduler: WriteScheduler<P>
  /** The lease on the store's PostgreSQL rows, when its target is PostgreSQL; taken on first use. */
  readonly lease: PostgresLease | undefined
  readonly #telemetry: WriteTelemetry
  readonly #stop: (() => Promise<void>) | undefined
  readonly #settled: (() => Promise<boolean>) | undefined
  readonly #ownership: Ownership
  #closed = false
  #closing: Promise<void> | undefined

  constructor (options: ResolvedBaseOptions<unknown>, hooks: StoreCoreHooks<P>) {
    this.options = options
    this.#stop = hooks.stop
    this.#settled = hooks.settled
    this.#telemetry = new WriteTelemetry(options.name, options.path)
    this.scheduler = new WriteScheduler<P>({
      perform: hooks.perform,
      isPermanent,
      onDelayedError: (err) => {
        // A permanent failure (a value that cannot be encoded, a dataFn that threw) is not kept.
        const message = isPermanent(err)
          ? `delayed write failed; the ${hooks.kept} would fail the same way again, so ${hooks.kept === 'data' ? 'it was' : 'they were'} dropped`
          : `delayed write failed; the ${hooks.kept} ${hooks.kept === 'data' ? 'is' : 'are'} kept for a retry`
        options.logger.error({ store: options.name, path: options.path, err }, message)
      },
      onFailure: (err) => {
        this.#telemetry.failed(err)
        hooks.onFailure?.(err)
      }
    }, { maxDelayMs: options.maxDelayMs, retry: options.retry })
    this.#ownership = takeOwnership(options, this.#shutdownFlush, this.scheduler)
    // PostgreSQL target: ownership across processes is a lease (src/postgres-lease.ts), released in #close.
    this.lease = options.target === undefined ? undefined : new PostgresLease(options.target, { key: options.name, logger: options.logger, context: (cause) => this.context(cause) })
  }

  /** The name used in logs and errors. */
  get name (): string {
    return this.options.name
  }

  /** The resolved path of the file the store owns. */
  get path (): string {
    return this.options.path
  }

  /** True once close() was called. */
  get closed (): boolean {
    return this.#closed
  }

  /** The last write failure, or undefined once a later write succeeded. */
  get lastError (): Error | undefined {
    return this.#telemetry.lastError
  }

  /** Counters and the last write's figures. */
  stats (): StoreStats {
    return this.#telemetry.snapshot(this.scheduler.counts.coalesced)
  }

  /** Names this store in an error. */
  context (cause?: unknown): StoreErrorContext {
    return { store: this.options.name, path: this.options.path, cause }
  }

  /** Throws `ERR_STORE_CLOSED` once close() was called. */
  assertOpen (): void {
    if (this.#closed) throw new StoreClosedError('the store is closed', this.context())
  }

  /**
   * Resolves once the store owns its file: at once when it does, else after waiting for the
   * owner (`ERR_STORE_LOCKED` past `lockTimeout`). Call before touching the file outside a write.
   */
  async ready (purpose: 'read' | 'write'): Promise<void> {
    if (!this.#ownership.owned) await this.#ownership.ready(purpose)
  }

  /** Writes `payload` now; resolves once it (or newer data) is durable. */
  async request (payload: P): Promise<void> {
    this.assertOpen()
    await this.#settle(this.scheduler.request(payload))
  }

  /** Waits for the in-flight write, then writes what is pending. */
  async flush (): Promise<void> {
    this.assertOpen()
    await this.#settle(this.scheduler.flush())
  }

  /** Flushes, stops the store's own machinery, releases ownership. Idempotent. */
  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async #close (): Promise<void> {
    this.#closed = true
    try {
      await this.#settle(this.scheduler.flush())
    } finally {
      this.scheduler.stop()
      try {
        await this.#stop?.()
      } finally {
        if (await (this.#settled?.() ?? true)) {
          this.#ownership.release()
        } else {
          this.options.logger.error({ store: this.name, path: this.path }, 'close(): the thread of a write terminated mid-write has not exited, so its rename may still land; the lock is kept until this process exits, so no other owner can take the file')
        }
        await this.lease?.release()
      }
    }
  }

  readonly #shutdownFlush = async (): Promise<void> => {
    if (this.#closing !== undefined) return await this.#closing
    await this.#settle(this.scheduler.flush())
  }

  // The scheduler speaks a plain error for data dropped by remove(); callers get a StoreError.
  async #settle (flush: Promise<void>): Promise<void> {
    try {
      await flush
    } catch (err) {
      if (err instanceof DiscardedError) throw new StoreWriteError('the data was discarded by remove() before it was written', this.context())
      throw err
    }
  }

  /**
   * Runs one write through `dispatch`, with the telemetry around it (start, end or error events,
   * counters), and turns a failed answer or a rejection into the StoreError its caller sees.
   * `checkMs` is what the main thread spent before dispatching.
   */
  async write (checkMs: number, dispatch: () => DispatchedWrite): Promise<{ readonly result: WriteSuccess, readonly mainMs: number | undefined }> {
    this.#telemetry.started()
    const start = performance.now()
    // Nothing writes the file before the store owns it; once it does, this is one check, with no
    // await (unlike ready()), so an owned store still dispatches in the same tick as its save. A
    // wait for another owner counts in this write's time, and its failure is this write's failure.
    if (!this.#ownership.owned) await this.#ownership.ready('write')
    let dispatched: DispatchedWrite
    let result: WriteResult
    try {
      dispatched = dispatch()
      result = await dispatched.result
    } catch (err) {
      throw failureFromRejection(err, this.context())
    }
    if (!result.ok) throw failureFromResult(result, this.context())
    const mainMs = dispatched.postMs === undefined ? undefined : checkMs + dispatched.postMs
    this.#telemetry.succeeded({ bytes: result.bytes, encodeMs: result.encodeMs, writeMs: result.writeMs, mainMs, checkMs, totalMs: performance.now() - start }, result.skipped === true)
    return { result, mainMs }
  }

  /**
   * Runs `load`; when it fails with `ERR_STORE_DECODE` and the store was built with
   * `onCorrupt: 'quarantine'`, moves `files` aside together (a missing one is skipped), logs where
   * each went (the log field is its key in `files`), and runs `load` again, which then finds none.
   */
  async loadOrQuarantine<R> (load: () => Promise<R>, files: Readonly<Record<string, string>>): Promise<R> {
    await this.ready('read')
    try {
      return await load()
    } catch (err) {
      if (!(err instanceof StoreDecodeError) || this.options.onCorrupt === 'throw') throw err
      const moved: Record<string, string | undefined> = {}
      for (const [field, file] of Object.entries(files)) moved[field] = await this.#quarantine(file)
      this.options.logger.error({ store: this.name, path: this.path, ...moved, err }, 'the file could not be decoded; it was moved aside and the store starts empty')
      return await load()
    }
  }

  // Moved aside as Home Assistant does: beside it, stamped with the time, never overwriting.
  async #quarantine (file: string): Promise<string | undefined> {
    const target = `${file}.corrupt.${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(file, target)
      return target
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StoreReadError(`the file could not be decoded, and moving it aside (onCorrupt: 'quarantine') failed: ${(err as Error).message}`, this.context(err))
    }
  }
}
