import { Deadline } from './debounce.js'

/** What a {@link WriteScheduler} needs from the store that owns it. */
export interface WriteSchedulerHooks<P> {
  /** Writes `payload` durably; rejects with the error the caller should see. */
  readonly perform: (payload: P) => Promise<void>
  /** True when writing the same payload again would fail the same way, so it is not kept. */
  readonly isPermanent: (err: unknown) => boolean
  /** A delayed write failed: nobody awaits it, so it must be reported here. */
  readonly onDelayedError: (err: unknown) => void
  /** Called once per write that failed, after its payload was kept or dropped. */
  readonly onFailure?: (err: unknown) => void
}

interface Pending<P> {
  readonly seq: number
  readonly payload: P
  readonly delayed: boolean
}

interface Write {
  /** The newest request this write carries; every request up to it is satisfied when it succeeds. */
  readonly seq: number
  readonly promise: Promise<void>
}

const noop = (): void => {}

/** Thrown to waiters whose request was dropped by {@link WriteScheduler.discard} before it was written. */
export class DiscardedError extends Error {
  override readonly name = 'DiscardedError'
}

/**
 * The write discipline every store shares: single flight (at most one write at a time), the newest
 * request wins (requests made during a write coalesce into the next one), a debounced deadline with
 * Home Assistant's semantics, and unsaved data kept after a failure for the next flush.
 */
export class WriteScheduler<P> {
  readonly #hooks: WriteSchedulerHooks<P>
  readonly #deadline: Deadline
  #seq = 0
  #durableSeq = 0
  #pending: Pending<P> | undefined
  #current: Write | undefined

  constructor (hooks: WriteSchedulerHooks<P>) {
    this.#hooks = hooks
    this.#deadline = new Deadline(this.#onDeadline)
  }

  /** True while a write is running. */
  get writing (): boolean {
    return this.#current !== undefined
  }

  /** True while data is waiting to be written. */
  get hasPending (): boolean {
    return this.#pending !== undefined
  }

  /** Replaces the pending data with `payload` and resolves once it (or newer data) is durable. */
  async request (payload: P): Promise<void> {
    const seq = ++this.#seq
    this.#pending = { seq, payload, delayed: false }
    this.#deadline.cancel()
    await this.#flushUntil(seq)
  }

  /** Replaces the pending data with `payload` and moves the deadline to now + `delayMs`. */
  schedule (payload: P, delayMs: number): void {
    this.#pending = { seq: ++this.#seq, payload, delayed: true }
    this.#deadline.set(delayMs)
  }

  /**
   * Waits for the running write (its failure belongs to its own caller), then writes what is
   * pending; resolves at once when nothing is.
   */
  async flush (): Promise<void> {
    this.#deadline.cancel()
    await this.#current?.promise.catch(noop)
    const pending = this.#pending
    if (pending !== undefined) await this.#flushUntil(pending.seq)
  }

  /** Drops the pending data and the deadline, then waits for the running write to settle. */
  async discard (): Promise<void> {
    this.#deadline.cancel()
    this.#pending = undefined
    await this.#current?.promise.catch(noop)
  }

  readonly #onDeadline = (): void => {
    const pending = this.#pending
    if (pending === undefined) return
    this.#flushUntil(pending.seq).catch(this.#hooks.onDelayedError)
  }

  async #flushUntil (target: number): Promise<void> {
    for (;;) {
      if (this.#durableSeq >= target) return
      const current = this.#current
      if (current !== undefined) {
        if (current.seq >= target) return await current.promise
        await current.promise.catch(noop)
        continue
      }
      const pending = this.#pending
      if (pending === undefined || pending.seq < target) throw new DiscardedError('the data was discarded before it was written')
      this.#start(pending)
    }
  }

  #start (taken: Pending<P>): void {
    this.#pending = undefined
    if (taken.delayed) this.#deadline.cancel()
    const promise = this.#hooks.perform(taken.payload).then(() => {
      if (taken.seq > this.#durableSeq) this.#durableSeq = taken.seq
    }, (err: unknown) => {
      // Keep unsaved data for the next flush, unless newer data replaced it or it would only fail again.
      if (this.#pending === undefined && !this.#hooks.isPermanent(err)) this.#pending = taken
      this.#hooks.onFailure?.(err)
      throw err
    }).finally(() => {
      this.#current = undefined
    })
    promise.catch(noop)
    this.#current = { seq: taken.seq, promise }
  }
}
