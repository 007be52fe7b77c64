import type { Worker } from 'node:worker_threads'

/** Resolves once `worker`'s thread has exited, at once when it already has. */
function exitOf (worker: Worker): Promise<void> {
  // threadId is -1 once the thread is gone; 'exit' is emitted asynchronously, never before this runs.
  if (worker.threadId === -1) return Promise.resolve()
  return new Promise((resolve) => { worker.once('exit', () => { resolve() }) })
}

/**
 * Threads terminated while they may still be writing, kept under the key of what they write to
 * until each has exited. `terminate()` returns before the thread stops: one inside a system call
 * (a write, an fsync, a rename) finishes that call first, so its old bytes can land after a newer
 * write unless nothing else writes the same target until it is gone.
 */
export class TerminatedThreads {
  readonly #exits = new Map<string, Promise<void>>()

  /** Keeps `workers` under `key` until every one of them (and every one kept there before) has exited. */
  add (key: string, workers: readonly Worker[]): void {
    if (workers.length === 0) return
    const previous = this.#exits.get(key)
    const exits = workers.map(exitOf)
    const gone: Promise<void> = Promise.all(previous === undefined ? exits : [previous, ...exits]).then(() => {
      if (this.#exits.get(key) === gone) this.#exits.delete(key)
    })
    this.#exits.set(key, gone)
  }

  /** Resolves once no thread kept under `key` is alive; undefined when none is. */
  exited (key: string): Promise<void> | undefined {
    return this.#exits.get(key)
  }

  /**
   * Resolves true once no thread kept under `key` is alive, false when one still is after `limitMs`
   * (with 0, it waits as long as the thread lives).
   */
  async settled (key: string, limitMs: number): Promise<boolean> {
    const exited = this.#exits.get(key)
    if (exited === undefined) return true
    if (limitMs === 0) {
      await exited
      return true
    }
    let timer: NodeJS.Timeout | undefined
    const settled = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false) }, limitMs) })
    ])
    clearTimeout(timer)
    return settled
  }
}
