import { performance } from 'node:perf_hooks'

/** Options of {@link Deadline}; `now` exists so tests can drive the clock. */
export interface DeadlineOptions {
  /** Monotonic milliseconds. @defaultValue performance.now */
  readonly now?: () => number
}

/**
 * One movable deadline, never keeping the process alive, with Home Assistant's delay-save semantics: every `set(delay)` moves the
 * deadline to now + delay, later or earlier, and the latest call wins. It keeps a single timer and
 * moves its target instead of creating and cancelling a timer per call: a later deadline is picked
 * up when the armed timer fires early and re-arms for the rest; only an earlier one re-arms at once.
 */
export class Deadline {
  readonly #onDue: () => void
  readonly #now: () => number
  #deadline = 0
  #timer: NodeJS.Timeout | undefined
  #firesAt = 0

  constructor (onDue: () => void, options: DeadlineOptions = {}) {
    this.#onDue = onDue
    this.#now = options.now ?? (() => performance.now())
  }

  /** True while a deadline is set and has not yet fired or been cancelled. */
  get armed (): boolean {
    return this.#timer !== undefined
  }

  /** Sets the deadline to now + `delayMs`, replacing any earlier or later one. */
  set (delayMs: number): void {
    const now = this.#now()
    this.#deadline = now + delayMs
    if (this.#timer !== undefined && this.#firesAt <= this.#deadline) return
    this.#arm(delayMs)
  }

  /** Forgets the deadline; `onDue` will not run for it. */
  cancel (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm (delayMs: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#firesAt = this.#now() + delayMs
    // Unref'd: a deadline alone must not keep the process alive (a one-hour delaySave would hold a
    // finished script for an hour). While anything else runs it fires on time; when the event loop
    // empties, the exit watch (exit-watch.ts) writes the data at beforeExit instead.
    this.#timer = setTimeout(this.#fire, delayMs)
    this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    const remaining = this.#deadline - this.#now()
    // Timers may fire a hair early; anything under a millisecond counts as due.
    if (remaining >= 1) {
      this.#arm(remaining)
      return
    }
    this.#onDue()
  }
}
