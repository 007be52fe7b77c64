/** One durable write as a mode saw it. */
export interface WriteSample {
  /**
   * Main-thread milliseconds the write cost: encoding inline, or checking and handing the value to
   * the worker; undefined when the store could not measure it (the task waited for a worker).
   */
  readonly mainMs: number | undefined
  /** Milliseconds from the start of the write to durable. */
  readonly totalMs: number
}

/** What a load pattern drives: the inline baseline and the offloaded store expose the same calls. */
export interface Saver {
  /** Writes `value`; resolves once it is durable. */
  save: (value: unknown) => Promise<void>
  /** Debounced write of `fn()` after `delayMs`; the latest call wins. */
  delaySave: (fn: () => unknown, delayMs: number) => void
  /** Every durable write so far. */
  readonly writes: readonly WriteSample[]
  /** Flushes what is pending and releases resources. */
  close: () => Promise<void>
}
