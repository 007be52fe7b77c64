/** A scenario or step that did not finish within its time limit; the gate reports it as an error. */
export class TimeLimitError extends Error {
  override readonly name = 'TimeLimitError'
  /** The limit that passed, ms. */
  readonly limitMs: number

  constructor (what: string, limitMs: number) {
    super(`${what} did not finish within ${limitMs} ms`)
    this.limitMs = limitMs
  }
}

/**
 * Settles as `work` does, or rejects with {@link TimeLimitError} after `limitMs`. The timer can only
 * fire when the event loop turns, so every loop this suite runs yields to it (a save that resolves
 * in microtasks would otherwise starve it); the timer is unref'd so it never keeps a run alive.
 */
export async function withTimeLimit<T> (what: string, limitMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new TimeLimitError(what, limitMs)) }, limitMs)
    timer.unref()
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves on the next turn of the event loop, after timers and I/O callbacks that are due. */
export async function nextTurn (): Promise<void> {
  await new Promise<void>((resolve) => { setImmediate(resolve) })
}
