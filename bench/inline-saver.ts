import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import type { BenchEncoder } from './encoders.js'
import type { Saver, WriteSample } from './saver.js'

type WriteFileAtomic = (path: string, data: string | Uint8Array, options: { fsync: boolean }) => Promise<void>

// write-file-atomic ships no types and is CommonJS.
const require = createRequire(import.meta.url)
const writeFileAtomic = require('write-file-atomic') as WriteFileAtomic

/**
 * An inline saver's shared half: each save tracked until written, and `delaySave` the usual trailing
 * debounce; a subclass supplies the write (encode on the main thread, then hand the bytes on).
 */
export abstract class DebouncedInlineSaver implements Saver {
  readonly writes: WriteSample[] = []
  readonly #inFlight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #pendingFn: (() => unknown) | undefined

  /** Encodes `value` at call time and writes it, pushing its sample to `writes` once written. */
  protected abstract write (value: unknown): Promise<void>

  /** Releases what the writes used, after the last one; nothing by default. */
  protected async end (): Promise<void> {}

  async save (value: unknown): Promise<void> {
    // Tracked from the call, so close() waits for a save still waiting on its connection or file.
    const saving = this.write(value)
    this.#inFlight.add(saving)
    try {
      await saving
    } finally {
      this.#inFlight.delete(saving)
    }
  }

  delaySave (fn: () => unknown, delayMs: number): void {
    this.#pendingFn = fn
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(this.#fire, delayMs)
  }

  readonly #fire = (): void => {
    this.#timer = undefined
    const fn = this.#pendingFn
    this.#pendingFn = undefined
    // Errors surface through the tracked write; a debounced fire has no caller to reject.
    if (fn !== undefined) this.save(fn()).catch(() => {})
  }

  async close (): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#fire()
    await Promise.all(this.#inFlight)
    await this.end()
  }
}

/**
 * What people do today: encode on the main thread at call time, then `write-file-atomic` (async,
 * fsync on; it queues writes to one file). `delaySave` is the usual trailing debounce.
 */
export class InlineSaver extends DebouncedInlineSaver {
  readonly #path: string
  readonly #encoder: BenchEncoder

  constructor (path: string, encoder: BenchEncoder) {
    super()
    this.#path = path
    this.#encoder = encoder
  }

  protected async write (value: unknown): Promise<void> {
    const start = performance.now()
    const data = this.#encoder.encodeInline(value)
    const writing = writeFileAtomic(this.#path, data, { fsync: true })
    const mainMs = performance.now() - start
    await writing
    this.writes.push({ mainMs, totalMs: performance.now() - start })
  }
}
