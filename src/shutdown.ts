/** A function that writes whatever a store still holds; registered once per store. */
export type ShutdownFlush = () => Promise<void>

/** What a store's constructor is given to register its flush: usable unbound. */
export type ShutdownRegister = (flush: ShutdownFlush) => void

/**
 * Collects every store's flush so one call at shutdown writes all pending data. `register` is an
 * arrow property, so `registry.register` can be passed around as a plain function.
 */
export class ShutdownRegistry {
  readonly #flushes = new Set<ShutdownFlush>()

  /** Adds a flush to run at shutdown. Usable unbound. */
  readonly register: ShutdownRegister = (flush) => {
    if (typeof flush !== 'function') throw new TypeError(`register() needs a function, got ${typeof flush}`)
    this.#flushes.add(flush)
  }

  /** Number of registered flushes. */
  get size (): number {
    return this.#flushes.size
  }

  /**
   * Runs every registered flush concurrently and waits for all of them, even when some fail; then
   * rejects with an AggregateError of every failure. Safe to call more than once.
   */
  async flush (): Promise<void> {
    const results = await Promise.allSettled([...this.#flushes].map(async (flush) => { await flush() }))
    const errors = results.flatMap((r) => r.status === 'rejected' ? [r.reason as unknown] : [])
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} of ${results.length} store flushes failed`)
  }
}
