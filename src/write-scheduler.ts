import { type Clock, DebounceTimer, type ResolvedClock, resolveClock } from './debounce.js'

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

/** How a scheduler caps its debounce and retries failed writes. */
export interface WriteSchedulerOptions {
  /**
   * Longest time delayed data may wait, however often the deadline is moved: a store touched more
   * often than its delay is still written at least this often. @defaultValue Infinity
   */
  readonly maxDelayMs?: number
  /** Backoff for retrying kept data after a failed write; `false` waits for the next flush. */
  readonly retry?: { readonly initialMs: number, readonly maxMs: number } | false
  /** The clock and timers for the debounce deadline and the retry backoff. @defaultValue the real ones */
  readonly clock?: Clock
}

/** Counters a scheduler keeps. */
export interface SchedulerCounts {
  /** Requests (save, delaySave, set...) superseded by a newer one before being written. */
  readonly coalesced: number
}

interface Pending<P> {
  readonly seq: number
  readonly payload: P
  readonly delayed: boolean
  /** The clock's time of the oldest request this data answers that is not yet durable. */
  readonly since: number
}

interface Write {
  /** The newest request this write carries; every request up to it is satisfied when it succeeds. */
  readonly seq: number
  readonly promise: Promise<void>
  /** As {@link Pending.since}, for the data this write carries. */
  readonly since: number
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
  readonly #clock: ResolvedClock
  readonly #debounce: DebounceTimer
  readonly #maxDelayMs: number
  readonly #retry: { readonly initialMs: number, readonly maxMs: number } | false
  #retryTimer: NodeJS.Timeout | undefined
  // Sets the retry backoff; 0 after a success.
  #consecutiveFailures = 0
  #coalesced = 0
  // When the oldest unwritten delayed request was made: the deadline may not move past it + maxDelay.
  #delayedSince: number | undefined
  #stopped = false
  #seq = 0
  #durableSeq = 0
  #pending: Pending<P> | undefined
  #current: Write | undefined

  constructor (hooks: WriteSchedulerHooks<P>, options: WriteSchedulerOptions = {}) {
    this.#hooks = hooks
    this.#clock = resolveClock(options.clock)
    this.#debounce = new DebounceTimer(this.#onDue, this.#clock)
    this.#maxDelayMs = options.maxDelayMs ?? Infinity
    this.#retry = options.retry ?? false
  }

  /** Counters for stats(). */
  get counts (): SchedulerCounts {
    return { coalesced: this.#coalesced }
  }

  /** True while a write is running. */
  get writing (): boolean {
    return this.#current !== undefined
  }

  /** True while data is waiting to be written. */
  get hasPending (): boolean {
    return this.#pending !== undefined
  }

  /**
   * The clock's time (`performance.now()` unless a clock was given) of the oldest request whose
   * data is not yet durable (waiting, or in a write still running); undefined when everything
   * requested is written or was dropped.
   */
  get unsavedSince (): number | undefined {
    const pending = this.#pending?.since
    const current = this.#current?.since
    if (pending === undefined || current === undefined) return pending ?? current
    return Math.min(pending, current)
  }

  /** Replaces the pending data with `payload` and resolves once it (or newer data) is durable. */
  async request (payload: P): Promise<void> {
    const seq = ++this.#seq
    this.#replacePending(seq, payload, false)
    this.#debounce.cancel()
    this.#delayedSince = undefined
    await this.#flushUntil(seq)
  }

  /**
   * Replaces the pending data with `payload` and moves the deadline to now + `delayMs`, but never
   * past `maxDelayMs` after the oldest delayed request still unwritten.
   */
  schedule (payload: P, delayMs: number): void {
    const now = this.#replacePending(++this.#seq, payload, true)
    this.#delayedSince ??= now
    this.#debounce.set(Math.min(delayMs, Math.max(0, this.#delayedSince + this.#maxDelayMs - now)))
  }

  /** Stops retrying and scheduling: for a store being closed. Data still pending stays unwritten. */
  stop (): void {
    this.#stopped = true
    this.#debounce.cancel()
    this.#clearRetry()
  }

  /** Makes `payload` the pending data (older pending data counts as coalesced); returns now. */
  #replacePending (seq: number, payload: P, delayed: boolean): number {
    const now = this.#clock.now()
    if (this.#pending !== undefined) this.#coalesced++
    this.#pending = { seq, payload, delayed, since: this.#pending?.since ?? now }
    return now
  }

  /**
   * Waits for the running write (its failure belongs to its own caller), then writes what is
   * pending; resolves once everything requested before the call is durable (or was dropped as a
   * permanent failure), at once when nothing is pending. Rejects when a write carrying that data fails.
   */
  async flush (): Promise<void> {
    this.#debounce.cancel()
    const target = this.#seq
    await this.#current?.promise.catch(noop)
    // Data dropped since (a permanent failure, discard()) is not this flush's to report.
    await this.#flushUntil(target, false)
  }

  /** Drops the pending data and the deadline, then waits for the running write to settle. */
  async discard (): Promise<void> {
    this.#debounce.cancel()
    this.#clearRetry()
    this.#delayedSince = undefined
    this.#pending = undefined
    await this.#current?.promise.catch(noop)
  }

  // Unref'd: a store that keeps failing must not keep the process alive; the shutdown flush is the
  // last attempt for whatever is still kept then.
  #scheduleRetry (): void {
    if (this.#retry === false || this.#stopped || this.#debounce.armed) return
    const delay = Math.min(this.#retry.maxMs, this.#retry.initialMs * 2 ** (this.#consecutiveFailures - 1))
    this.#retryTimer = this.#clock.setTimeout(this.#onDue, delay)
    this.#retryTimer.unref()
  }

  #clearRetry (): void {
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  readonly #onDue = (): void => {
    const pending = this.#pending
    if (pending === undefined) return
    this.#flushUntil(pending.seq).catch(this.#hooks.onDelayedError)
  }

  // Single flight: at most one write runs; whoever finds none running starts one with the newest
  // pending data, so every request made during a write coalesces into the next one. Another caller
  // (a fired deadline, a save) may start the write of our data while we wait: we wait for that one
  // too, and its failure is ours.
  async #flushUntil (target: number, droppedIsError = true): Promise<void> {
    for (;;) {
      if (this.#durableSeq >= target) return
      const current = this.#current
      if (current !== undefined) {
        if (current.seq >= target) return await current.promise
        await current.promise.catch(noop)
        continue
      }
      const pending = this.#pending
      if (pending === undefined || pending.seq < target) {
        if (droppedIsError) throw new DiscardedError('the data was discarded before it was written')
        return
      }
      this.#start(pending)
    }
  }

  #start (taken: Pending<P>): void {
    this.#pending = undefined
    this.#delayedSince = undefined
    this.#clearRetry()
    if (taken.delayed) this.#debounce.cancel()
    const promise = this.#hooks.perform(taken.payload).then(() => {
      if (taken.seq > this.#durableSeq) this.#durableSeq = taken.seq
      this.#consecutiveFailures = 0
    }, (err: unknown) => {
      this.#consecutiveFailures++
      // Keep unsaved data for a retry, unless newer data replaced it or it would only fail again.
      const newer = this.#pending
      if (newer === undefined && !this.#hooks.isPermanent(err)) {
        this.#pending = taken
        this.#scheduleRetry()
      } else if (newer !== undefined && taken.since < newer.since) {
        // The newer data replaces this write's, but what this write carried has been unsaved longer.
        this.#pending = { ...newer, since: taken.since }
      }
      this.#hooks.onFailure?.(err)
      throw err
    }).finally(() => {
      this.#current = undefined
    })
    promise.catch(noop)
    this.#current = { seq: taken.seq, promise, since: taken.since }
  }
}
