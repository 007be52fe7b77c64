import { performance } from 'node:perf_hooks'
import { type ResourceLimits, type TransferListItem, Worker } from 'node:worker_threads'
import { WriteTimeoutError } from './write-outcome.js'

/** Options of {@link PinnedWorker}. */
export interface PinnedWorkerOptions {
  /** Milliseconds one request may take before the worker is terminated; 0 disables. */
  readonly timeoutMs: number
  /** Heap limits for the worker. */
  readonly resourceLimits?: ResourceLimits | undefined
}

/** What {@link PinnedWorker.request} returns: the answer, and what posting cost this thread. */
export interface Dispatched<R> {
  /** Settles with the worker's answer, or rejects when the worker died or timed out. */
  readonly response: Promise<R>
  /** Milliseconds the main thread spent in postMessage (the structured-clone serialization). */
  readonly postMs: number
}

/** A request without its `id`, for each member of a union of requests. */
export type WithoutId<Q> = Q extends unknown ? Omit<Q, 'id'> : never

// A flag a worker started from a file refuses although its parent accepted it: it only applies to
// code given as a string (--eval, --print, stdin), which a worker started from a file is not.
const STRING_INPUT_ONLY = new Set(['--input-type'])

/**
 * The parent's execArgv without the flags a file-started worker rejects, so the pinned worker starts
 * under whatever flags the user's process has (loaders, --require, --enable-source-maps kept).
 */
function workerExecArgv (execArgv: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] ?? ''
    const name = arg.split('=', 1)[0] ?? ''
    if (!STRING_INPUT_ONLY.has(name)) { kept.push(arg); continue }
    if (!arg.includes('=')) i++ // its value is the next argument
  }
  return kept
}

interface Outstanding<R> {
  readonly resolve: (response: R) => void
  readonly reject: (err: Error) => void
  readonly timer: NodeJS.Timeout | undefined
}

/**
 * One worker thread kept for as long as its owner lives, unlike a pool's threads that come and go.
 * A keyed store's mirror lives in it. When it dies a fresh one starts on the next request, and
 * `generation` tells the owner that the state it kept is gone.
 */
export class PinnedWorker<Q extends { readonly id: number }, R extends { readonly id: number }> {
  readonly #url: URL
  readonly #workerData: unknown
  readonly #options: PinnedWorkerOptions
  readonly #outstanding = new Map<number, Outstanding<R>>()
  #worker: Worker | undefined
  #generation = 0
  #nextId = 1

  constructor (url: URL, workerData: unknown, options: PinnedWorkerOptions) {
    this.#url = url
    this.#workerData = workerData
    this.#options = options
  }

  /** Increases each time a new thread is started: a changed value means the old thread's state is lost. */
  get generation (): number {
    return this.#generation
  }

  /** True while a thread is running. */
  get alive (): boolean {
    return this.#worker !== undefined
  }

  /** Starts the thread now if it is not running; returns the generation that will answer the next request. */
  ensureStarted (): number {
    this.#start()
    return this.#generation
  }

  /**
   * Sends a request (its `id` is assigned here) and returns its answer with the main-thread cost of
   * posting it; `what` names the request in the timeout's message ("the load took longer ...").
   */
  request (message: WithoutId<Q>, transferList?: readonly TransferListItem[], what = 'write'): Dispatched<R> {
    const worker = this.#start()
    const id = this.#nextId++
    const response = new Promise<R>((resolve, reject) => {
      const timeout = this.#options.timeoutMs
      const timer = timeout > 0
        ? setTimeout(() => { this.#kill(worker, new WriteTimeoutError(what, timeout)) }, timeout)
        : undefined
      timer?.unref()
      this.#outstanding.set(id, { resolve, reject, timer })
    })
    if (this.#outstanding.size === 1) worker.ref()
    const start = performance.now()
    try {
      worker.postMessage({ ...message, id }, transferList)
    } catch (err) {
      this.#settle(id)
      throw err
    }
    return { response, postMs: performance.now() - start }
  }

  /** Stops the thread; requests still outstanding reject. */
  async terminate (): Promise<void> {
    const worker = this.#worker
    if (worker === undefined) return
    this.#fail(worker, new Error('the worker was terminated'))
    await worker.terminate()
  }

  // Flags that act on the whole process (V8's --expose-gc, --max-old-space-size) are refused in
  // a worker's execArgv although the parent accepted them; they already apply to every thread, so
  // the worker starts again without the ones Node names.
  #construct (execArgv: string[]): Worker {
    const options = { workerData: this.#workerData, ...(this.#options.resourceLimits === undefined ? {} : { resourceLimits: this.#options.resourceLimits }) }
    try {
      return new Worker(this.#url, { ...options, execArgv })
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err
      const refused = new Set(((err as Error).message.split('flags: ')[1] ?? '').split(', '))
      const kept = execArgv.filter((arg) => !refused.has(arg))
      if (kept.length === execArgv.length) throw err
      return new Worker(this.#url, { ...options, execArgv: kept })
    }
  }

  #start (): Worker {
    if (this.#worker !== undefined) return this.#worker
    const worker = this.#construct(workerExecArgv(process.execArgv))
    this.#generation++
    this.#worker = worker
    // Idle, it must not keep the process alive; request() refs it while answers are awaited.
    worker.unref()
    worker.on('message', (response: R) => {
      const outstanding = this.#settle(response.id)
      outstanding?.resolve(response)
    })
    worker.on('error', (err) => { this.#fail(worker, err) })
    worker.on('exit', (code) => { this.#fail(worker, new Error(`the worker exited with code ${code}`)) })
    return worker
  }

  #settle (id: number): Outstanding<R> | undefined {
    const outstanding = this.#outstanding.get(id)
    if (outstanding === undefined) return undefined
    this.#outstanding.delete(id)
    if (outstanding.timer !== undefined) clearTimeout(outstanding.timer)
    if (this.#outstanding.size === 0) this.#worker?.unref()
    return outstanding
  }

  #kill (worker: Worker, reason: Error): void {
    this.#fail(worker, reason)
    worker.terminate().catch(() => {})
  }

  // Every request outstanding on a dead thread fails with the reason it died.
  #fail (worker: Worker, reason: Error): void {
    if (this.#worker !== worker) return
    this.#worker = undefined
    for (const [id, outstanding] of this.#outstanding) {
      this.#settle(id)
      outstanding.reject(reason)
    }
  }
}
