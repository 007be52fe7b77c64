import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import type { BenchEncoder } from './encoders.js'
import type { Saver, WriteSample } from './saver.js'

type WriteFileAtomic = (path: string, data: string | Uint8Array, options: { fsync: boolean }) => Promise<void>

// write-file-atomic ships no types and is CommonJS.
const require = createRequire(import.meta.url)
const writeFileAtomic = require('write-file-atomic') as WriteFileAtomic

/**
 * What people do today: encode on the main thread at call time, then `write-file-atomic` (async,
 * fsync on; it queues writes to one file). `delaySave` is the usual trailing debounce.
 */
export class InlineSaver implements Saver {
  readonly writes: WriteSample[] = []
  readonly #path: string
  readonly #encoder: BenchEncoder
  readonly #inFlight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #pendingFn: (() => unknown) | undefined

  constructor (path: string, encoder: BenchEncoder) {
    this.#path = path
    this.#encoder = encoder
  }

  async save (value: unknown): Promise<void> {
    const start = performance.now()
    const data = this.#encoder.encodeInline(value)
    const writing = writeFileAtomic(this.#path, data, { fsync: true })
    const mainMs = performance.now() - start
    const tracked = writing.then(() => { this.writes.push({ mainMs, totalMs: performance.now() - start }) })
    this.#inFlight.add(tracked)
    try {
      await tracked
    } finally {
      this.#inFlight.delete(tracked)
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
  }
}
