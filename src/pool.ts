import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import type { ResourceLimits, TransferListItem } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { StoreClosedError, StoreInvalidOptionError } from './errors.js'
import type { WriteResult, WriteTarget, WriteTask } from './protocol.js'
import { kDispatch, kTargetSettled } from './symbols.js'
import { TerminatedThreads } from './terminated-threads.js'
import { WriteTimeoutError } from './write-outcome.js'

/** Options of {@link WriterPool}. */
export interface WriterPoolOptions {
  /** Most worker threads the pool starts. @defaultValue min(4, available parallelism) */
  readonly maxThreads?: number
  /** Milliseconds an idle worker lives before it exits. @defaultValue 30000 */
  readonly idleTimeout?: number
  /**
   * Milliseconds one write (queueing, encoding and the write itself) may take before its worker is
   * terminated and the write rejects with `ERR_STORE_WRITE`; 0 disables the limit.
   * @defaultValue 60000
   */
  readonly writeTimeout?: number
  /** Heap limits for each worker, so a runaway encoder kills its worker, not the process. */
  readonly resourceLimits?: ResourceLimits
  /**
   * Milliseconds `close()` waits for accepted writes; past it, their workers are terminated and
   * those writes reject with `ERR_STORE_CLOSED` (each file then holds its previous or its new
   * content, never a mix). 0 waits as long as the writes take (each still bounded by `writeTimeout`).
   * @defaultValue 0
   */
  readonly closeTimeout?: number
}

/** The resolved form of {@link WriterPoolOptions}. */
interface ResolvedPoolOptions {
  readonly maxThreads: number
  readonly idleTimeout: number
  readonly writeTimeout: number
  readonly resourceLimits: ResourceLimits | undefined
  readonly closeTimeout: number
}

// A path, not a file: URL: Piscina converts a URL back to a path on every run() (new URL +
// fileURLToPath, a few µs of each dispatch), and a path on none.
const WRITER = fileURLToPath(new URL('../workers/writer.js', import.meta.url))

function nonNegativeInteger (name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new StoreInvalidOptionError(`options.${name} must be an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

function resourceLimitsOf (limits: unknown): ResourceLimits | undefined {
  if (limits !== undefined && (limits === null || typeof limits !== 'object')) throw new StoreInvalidOptionError(`options.resourceLimits must be an object such as { maxOldGenerationSizeMb: 256 }, got ${String(limits)}`)
  return limits as ResourceLimits | undefined
}

function resolve (options: WriterPoolOptions): ResolvedPoolOptions {
  if (options === null || typeof options !== 'object') throw new StoreInvalidOptionError(`options must be an object, got ${String(options)}`)
  return {
    maxThreads: nonNegativeInteger('maxThreads', options.maxThreads, Math.max(1, Math.min(4, availableParallelism())), 1),
    idleTimeout: nonNegativeInteger('idleTimeout', options.idleTimeout, 30_000),
    writeTimeout: nonNegativeInteger('writeTimeout', options.writeTimeout, 60_000),
    resourceLimits: resourceLimitsOf(options.resourceLimits),
    closeTimeout: nonNegativeInteger('closeTimeout', options.closeTimeout, 0)
  }
}

// What a terminated thread may still be writing to: a file, or a store's PostgreSQL row.
function targetKey (target: WriteTarget): string {
  return target.kind === 'file' ? `file:${target.path}` : `postgres:${target.describe}:${target.tables.rows}:${target.key}`
}

/**
 * What Piscina needs of an AbortSignal (its listener, `aborted`, `reason`) for one write, without
 * an AbortController and EventTarget's listener machinery on every dispatch: Piscina terminates
 * the write's worker when it fires. `reason` is the StoreError the write rejects with.
 */
class WriteAbort {
  aborted = false
  reason: Error | undefined
  #listener: (() => void) | undefined

  addEventListener (_name: 'abort', listener: () => void): void {
    this.#listener = listener
  }

  removeEventListener (_name: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined
  }

  abort (reason: Error): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listener = this.#listener
    this.#listener = undefined
    listener?.()
  }
}

/**
 * The worker threads that encode and write for stores: one Piscina. Idle workers do not keep the
 * process alive, so a CLI that uses a store exits by itself once its writes are done.
 */
export class WriterPool {
  readonly #options: ResolvedPoolOptions
  #piscina: Piscina<WriteTask, WriteResult> | undefined
  // Tracked here rather than left to Piscina: its close() rejects tasks still queued for a worker
  // that is starting, and a write that was accepted must be allowed to finish.
  readonly #running = new Set<Promise<unknown>>()
  // One per write that has not settled (with its target's key), so close() can cut them off after closeTimeout.
  readonly #aborts = new Map<WriteAbort, string>()
  // Piscina rejects an aborted write first and only then terminates its thread, without waiting:
  // a thread inside a rename or an fsync finishes that call before it stops. Until it is gone, no
  // later write to the same target starts, so its old bytes cannot land over newer ones.
  readonly #terminated = new TerminatedThreads()
  #closed = false

  constructor (options: WriterPoolOptions = {}) {
    this.#options = resolve(options)
  }

  /** True once {@link WriterPool.close} was called; every later write rejects with `ERR_STORE_CLOSED`. */
  get closed (): boolean {
    return this.#closed
  }

  /** Worker threads currently alive. */
  get threads (): number {
    return this.#piscina?.threads.length ?? 0
  }

  // Started on first use: a store that only loads never pays for threads.
  #start (): Piscina<WriteTask, WriteResult> {
    this.#piscina ??= new Piscina<WriteTask, WriteResult>({
      filename: WRITER,
      minThreads: 0,
      maxThreads: this.#options.maxThreads,
      idleTimeout: this.#options.idleTimeout,
      ...(this.#options.resourceLimits === undefined ? {} : { resourceLimits: this.#options.resourceLimits })
    })
    return this.#piscina
  }

  /**
   * @internal Hands one write to a worker and says what the hand-off cost this thread: `postMs` is
   * the time spent in Piscina's synchronous postMessage (copying the task: a store sends a flat
   * string or a transferred buffer, so this is small), or undefined when no worker was ready: the
   * task was queued (it is then posted later, from an event) or a worker was started for it (the
   * time would be mostly `new Worker()`, not serialization). The result rejects with
   * {@link StoreClosedError} after `close()`, with {@link WriteTimeoutError} past `writeTimeout`,
   * and with Piscina's error when the worker died.
   */
  [kDispatch] (task: WriteTask, transferList?: TransferListItem[]): { readonly result: Promise<WriteResult>, readonly postMs: number | undefined } {
    const key = targetKey(task.target)
    const waits = this.#terminated.exited(key) !== undefined
    const queuedBefore = this.#piscina?.queueSize ?? 0
    const threadsBefore = this.threads
    const start = performance.now()
    const result = this.#track(task, transferList, key)
    const postMs = performance.now() - start
    // Queued, or waiting for a terminated thread: posted later, unmeasured. A thread started: the
    // time is mostly new Worker(), not the clone.
    const measured = !waits && (this.#piscina?.queueSize ?? 0) <= queuedBefore && this.threads <= threadsBefore
    return { result, postMs: measured ? postMs : undefined }
  }

  #track (task: WriteTask, transferList: TransferListItem[] | undefined, key: string): Promise<WriteResult> {
    // Tracked whole, the wait for a terminated thread included, so close() waits for it too.
    const running = this.#run(task, transferList, key)
    this.#running.add(running)
    const forget = (): void => { this.#running.delete(running) }
    running.then(forget, forget)
    return running
  }

  async #run (task: WriteTask, transferList: TransferListItem[] | undefined, key: string): Promise<WriteResult> {
    if (this.#closed) throw new StoreClosedError('the writer pool is closed')
    const piscina = this.#start()
    const timeout = this.#options.writeTimeout
    const abort = new WriteAbort()
    this.#aborts.set(abort, key)
    const terminated = this.#terminated.exited(key)
    let waiting = terminated !== undefined
    const timer = timeout === 0
      ? undefined
      : setTimeout(() => {
        this.#abort(abort, waiting
          ? new WriteTimeoutError('write', timeout, 'it never started: the thread of an earlier write to the same target, terminated mid-write, had not exited yet')
          : new WriteTimeoutError('write', timeout))
      }, timeout)
    timer?.unref()
    try {
      if (terminated !== undefined) {
        // Counted in writeTimeout: a thread stuck in a system call for good fails this write at
        // the timeout (its data is kept for a retry) instead of leaving the caller waiting.
        let wake: (() => void) | undefined
        await Promise.race([terminated, new Promise<void>((resolve) => { wake = resolve; abort.addEventListener('abort', resolve) })])
        waiting = false
        if (wake !== undefined) abort.removeEventListener('abort', wake)
        if (abort.reason !== undefined) throw abort.reason
      }
      return await piscina.run(task, transferList === undefined ? { signal: abort } : { signal: abort, transferList: transferList as never })
    } catch (err) {
      if (abort.reason !== undefined) throw abort.reason
      throw err
    } finally {
      clearTimeout(timer)
      this.#aborts.delete(abort)
    }
  }

  // Aborts one write; when that terminates its thread (Piscina removes it from `threads` at once),
  // keeps the thread's exit under the write's target until the thread is gone.
  #abort (abort: WriteAbort, reason: Error): void {
    const key = this.#aborts.get(abort)
    const piscina = this.#piscina
    const before = piscina?.threads ?? []
    abort.abort(reason)
    if (key === undefined || piscina === undefined) return
    const after = new Set(piscina.threads)
    this.#terminated.add(key, before.filter((worker) => !after.has(worker)))
  }

  /**
   * @internal Resolves true once no thread terminated while writing to the file at `path` (resolved)
   * is alive, so none of its writes can land any more; false when one still is after another
   * `writeTimeout` (with `writeTimeout: 0`, it waits as long as the thread lives).
   */
  async [kTargetSettled] (path: string): Promise<boolean> {
    return await this.#terminated.settled(`file:${path}`, this.#options.writeTimeout)
  }

  /**
   * Refuses new writes (they reject with `ERR_STORE_CLOSED`), lets the accepted ones finish (each
   * is still bounded by `writeTimeout`; past `closeTimeout`, when set, they are cut off and reject
   * with `ERR_STORE_CLOSED`), then stops the workers. Never rejects.
   */
  async close (): Promise<void> {
    this.#closed = true
    const settled = Promise.allSettled(this.#running)
    const limit = this.#options.closeTimeout
    if (limit > 0 && this.#running.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        settled.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(true) }, limit) })
      ])
      clearTimeout(timer)
      if (timedOut) {
        for (const abort of [...this.#aborts.keys()]) {
          this.#abort(abort, new StoreClosedError(`the writer pool was closed and this write did not finish within closeTimeout (${limit} ms); its worker was terminated, so the file holds its previous or its new content, never a mix`))
        }
      }
    }
    await settled
    const piscina = this.#piscina
    this.#piscina = undefined
    if (piscina !== undefined) await piscina.close()
  }
}

let shared: WriterPool | undefined

/** The pool stores use when none is given: started lazily, shared by the whole process. */
export function defaultPool (): WriterPool {
  if (shared === undefined || shared.closed) shared = new WriterPool()
  return shared
}
