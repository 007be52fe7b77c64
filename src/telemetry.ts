import { channels, type WriteEndMessage } from './channels.js'

/** The durations and size of one acknowledged write: the `write:end` message's figures, and more. */
export interface LastWrite extends Omit<WriteEndMessage, 'store' | 'path'> {
  /** True when the bytes equalled the last write's, so the file was not rewritten. */
  readonly unchanged: boolean
  /** When it was acknowledged (ms since the epoch). */
  readonly at: number
}

/** What `store.stats()` returns. */
export interface StoreStats {
  /** Acknowledged writes, unchanged ones included. */
  readonly writes: number
  /** Bytes written to disk (unchanged writes not counted). */
  readonly bytes: number
  /** Failed writes. */
  readonly failures: number
  /** Requests superseded by a newer one before they were written (many mutations, one write). */
  readonly coalesced: number
  /** Writes skipped because the bytes equalled what this store last wrote. */
  readonly unchanged: number
  /** The last acknowledged write, if any. */
  readonly lastWrite: LastWrite | undefined
  /** The last write failure, cleared by the next successful write. */
  readonly lastError: Error | undefined
}

/** One store's write telemetry: the counters `stats()` reads, and the diagnostics-channel events. */
export class WriteTelemetry {
  readonly #store: string
  readonly #path: string
  #writes = 0
  #bytes = 0
  #failures = 0
  #unchanged = 0
  #lastWrite: LastWrite | undefined
  #lastError: Error | undefined

  constructor (store: string, path: string) {
    this.#store = store
    this.#path = path
  }

  /** The last failure, until a write succeeds. */
  get lastError (): Error | undefined {
    return this.#lastError
  }

  /** A write was handed to a worker. */
  started (): void {
    channels.writeStart.publish({ store: this.#store, path: this.#path })
  }

  /** A write was acknowledged. */
  succeeded (write: Omit<WriteEndMessage, 'store' | 'path'>, unchanged: boolean): void {
    this.#writes++
    if (unchanged) this.#unchanged++
    else this.#bytes += write.bytes
    this.#lastWrite = { ...write, unchanged, at: Date.now() }
    this.#lastError = undefined
    channels.writeEnd.publish({ store: this.#store, path: this.#path, ...write })
  }

  /** A write failed with `error`. */
  failed (error: unknown): void {
    this.#failures++
    this.#lastError = error instanceof Error ? error : new Error(String(error))
    channels.writeError.publish({ store: this.#store, path: this.#path, error: this.#lastError })
  }

  /** A snapshot of the counters. */
  snapshot (coalesced: number): StoreStats {
    return {
      writes: this.#writes,
      bytes: this.#bytes,
      failures: this.#failures,
      coalesced,
      unchanged: this.#unchanged,
      lastWrite: this.#lastWrite,
      lastError: this.#lastError
    }
  }
}
