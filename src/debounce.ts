import { performance } from 'node:perf_hooks'

/**
 * Where a timer takes the time from and how it arms itself; every member is optional and defaults
 * to the real thing. It exists so tests can drive time (node:test's `mock.timers` replaces the
 * global timers and `Date`, but not `performance.now`).
 */
export interface Clock {
  /** Monotonic milliseconds. @defaultValue performance.now */
  readonly now?: () => number
  /** Arms a one-shot timer; the caller unrefs what it returns. @defaultValue the global setTimeout, looked up at each call */
  readonly setTimeout?: (callback: () => void, delayMs: number) => NodeJS.Timeout
  /** Disarms a timer that `setTimeout` returned. @defaultValue the global clearTimeout, looked up at each call */
  readonly clearTimeout?: (timer: NodeJS.Timeout) => void
}

/** A {@link Clock} with every member filled in. */
export type ResolvedClock = Required<Clock>

/** Fills in the real clock and timers for whatever `clock` leaves out. */
export function resolveClock (clock: Clock = {}): ResolvedClock {
  // The globals are looked up at each call, not captured: mock.timers enabled after a store was
  // built still drives its timers.
  return {
    now: clock.now ?? (() => performance.now()),
    setTimeout: clock.setTimeout ?? ((callback, delayMs) => setTimeout(callback, delayMs)),
    clearTimeout: clock.clearTimeout ?? ((timer) => { clearTimeout(timer) })
  }
}

/**
 * One movable timer, never keeping the process alive, with Home Assistant's delay-save semantics:
 * every `set(delay)` moves the deadline to now + delay, later or earlier, and the latest call wins.
 * It keeps a single timer and moves its target instead of creating and cancelling a timer per
 * call: a later deadline is picked up when the armed timer fires early and re-arms for the rest;
 * only an earlier one re-arms at once.
 */
export class DebounceTimer {
  readonly #onDue: () => void
  readonly #clock: ResolvedClock
  #deadline = 0
  #timer: NodeJS.Timeout | undefined
  #firesAt = 0

  constructor (onDue: () => void, clock: Clock = {}) {
    this.#onDue = onDue
    this.#clock = resolveClock(clock)
  }

  /** True while a deadline is set and has not yet fired or been cancelled. */
  get armed (): boolean {
    return this.#timer !== undefined
  }

  /** Sets the deadline to now + `delayMs`, replacing any earlier or later one. */
  set (delayMs: number): void {
    const now = this.#clock.now()
    this.#deadline = now + delayMs
    if (this.#timer !== undefined && this.#firesAt <= this.#deadline) return
    this.#arm(delayMs)
  }

  /** Forgets the deadline; `onDue` will not run for it. */
  cancel (): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm (delayMs: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#firesAt = this.#clock.now() + delayMs
    // Unref'd: a deadline alone must not keep the process alive (a one-hour delaySave would hold a
    // finished script for an hour). While anything else runs it fires on time; when the event loop
    // empties, the exit watch (exit-watch.ts) writes the data at beforeExit instead.
    this.#timer = this.#clock.setTimeout(this.#fire, delayMs)
    this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    const remaining = this.#deadline - this.#clock.now()
    // Timers may fire a hair early; anything under a millisecond counts as due.
    if (remaining >= 1) {
      this.#arm(remaining)
      return
    }
    this.#onDue()
  }
}
