import { performance } from 'node:perf_hooks'
import { type ResourceLimits, type TransferListItem, Worker } from 'node:worker_threads'
import { TerminatedThreads } from './terminated-threads.js'
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
  /**
   * Milliseconds the main thread spent in postMessage (the structured-clone serialization), or
   * undefined when the request waits for a terminated thread to exit and is posted later.
   */
  readonly postMs: number | undefined
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

/** A request made while a terminated thread had not exited yet: posted to the next thread once it has. */
interface Waiting {
  readonly message: object
  readonly transferList: readonly TransferListItem[] | undefined
}

// The one target every thread of a PinnedWorker writes to, as TerminatedThreads keys it.
const TARGET = 'target'

/**
 * One worker thread kept for as long as its owner lives, unlike a pool's threads that come and go.
 * A keyed store's mirror lives in it. When it dies a fresh one starts on the next request, and
 * `generation` tells the owner that the state it kept is gone. A thread terminated by a timeout
 * may still be inside a system call (a rename, a write) that lands when it returns: the next thread
 * is only started, and the requests made meanwhile posted to it, once that one has exited.
 */
export class PinnedWorker<Q extends { readonly id: number }, R extends { readonly id: number }> {
  readonly #url: URL
  readonly #workerData: unknown
  readonly #options: PinnedWorkerOptions
  readonly #outstanding = new Map<number, Outstanding<R>>()
  #worker: Worker | undefined
  // Defined while this generation's thread waits for a terminated one to exit: the requests made meanwhile, in order.
  #waiting: Waiting[] | undefined
  readonly #terminated = new TerminatedThreads()
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

  /** True while a thread is running, or is to start (once a terminated one has exited) for requests already made. */
  get alive (): boolean {
    return this.#worker !== undefined || this.#waiting !== undefined
  }

  /** Starts the thread now if it is not running; returns the generation that will answer the next request. */
  ensureStarted (): number {
    this.#start()
    return this.#generation
  }

  /**
   * Sends a request (its `id` is assigned here) and returns its answer with the main-thread cost of
   * posting it; `what` names the request in the timeout's message ("the load took longer ...").
   * The timeout counts a wait for a terminated thread to exit: a thread stuck in a system call for
   * good fails the requests at the timeout instead of leaving them waiting.
   */
  request (message: WithoutId<Q>, transferList?: readonly TransferListItem[], what = 'write'): Dispatched<R> {
    this.#start()
    const worker = this.#worker
    const id = this.#nextId++
    const response = new Promise<R>((resolve, reject) => {
      const timeout = this.#options.timeoutMs
      const timer = timeout > 0
        ? setTimeout(() => { this.#timedOut(worker, what, timeout) }, timeout)
        : undefined
      timer?.unref()
      this.#outstanding.set(id, { resolve, reject, timer })
    })
    if (worker === undefined) {
      this.#waiting?.push({ message: { ...message, id }, transferList })
      return { response, postMs: undefined }
    }
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
    this.#drop(new Error('the worker was terminated'))
    await worker?.terminate()
  }

  /**
   * Resolves true once no thread terminated by a timeout is alive, so none of its writes can land
   * any more; false when one still is after another timeout (with no timeout, it waits as long as
   * the thread lives).
   */
  async settled (): Promise<boolean> {
    return await this.#terminated.settled(TARGET, this.#options.timeoutMs)
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

  // Starts the next generation: its thread at once, or once the terminated ones have exited.
  #start (): void {
    if (this.#worker !== undefined || this.#waiting !== undefined) return
    this.#generation++
    const exited = this.#terminated.exited(TARGET)
    if (exited === undefined) {
      this.#worker = this.#launch()
      return
    }
    const waiting: Waiting[] = []
    this.#waiting = waiting
    exited.then(() => { this.#startWaiting(waiting) }, () => {})
  }

  #startWaiting (waiting: readonly Waiting[]): void {
    // Given up meanwhile (a timeout, terminate()): its requests were failed, none is posted.
    if (this.#waiting !== waiting) return
    this.#waiting = undefined
    let worker: Worker
    try {
      worker = this.#launch()
    } catch (err) {
      this.#drop(err as Error)
      return
    }
    this.#worker = worker
    this.#postWaiting(worker, waiting)
  }

  #postWaiting (worker: Worker, waiting: readonly Waiting[]): void {
    if (this.#outstanding.size > 0) worker.ref()
    for (const { message, transferList } of waiting) {
      try {
        worker.postMessage(message, transferList)
      } catch (err) {
        // A message that cannot be posted now could not have been then: it fails alone, as it would have.
        const id = (message as { id: number }).id
        this.#settle(id)?.reject(err as Error)
      }
    }
  }

  #launch (): Worker {
    const worker = this.#construct(workerExecArgv(process.execArgv))
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

  // A request past its timeout: on a running thread, the thread is terminated; while it waited for
  // a terminated thread to exit, it and those waiting with it fail, and the next request starts over.
  #timedOut (worker: Worker | undefined, what: string, timeout: number): void {
    const current = this.#worker
    if (worker !== undefined && worker !== current) return
    if (current === undefined) {
      this.#drop(new WriteTimeoutError(what, timeout, 'it never started: the thread of an earlier request, terminated mid-write, had not exited yet'))
      return
    }
    // Kept until it exits: no thread after it may write before its last system call has returned.
    this.#terminated.add(TARGET, [current])
    this.#fail(current, new WriteTimeoutError(what, timeout))
    current.terminate().catch(() => {})
  }

  // Every request outstanding on a dead thread fails with the reason it died.
  #fail (worker: Worker, reason: Error): void {
    if (this.#worker !== worker) return
    this.#drop(reason)
  }

  // Forgets the current generation's thread (running or waiting to start) and fails its requests.
  #drop (reason: Error): void {
    this.#worker = undefined
    this.#waiting = undefined
    for (const [id, outstanding] of this.#outstanding) {
      this.#settle(id)
      outstanding.reject(reason)
    }
  }
}
