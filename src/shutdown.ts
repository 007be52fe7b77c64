import diagnosticsChannel from 'node:diagnostics_channel'
import { constants } from 'node:os'
import type { WriteErrorMessage, WriteEndMessage, WriteStartMessage } from './channels.js'
import { type Logger, stderrLogger } from './logger.js'

/** A function that writes whatever a store still holds; registered once per store. */
export type ShutdownFlush = () => Promise<void>

/** Who a flush belongs to, so a flush that does not finish can be named in the log. */
export interface ShutdownFlushInfo {
  /** The store's name. */
  readonly name?: string
  /** The store's resolved path. */
  readonly path?: string
}

/** What a store's constructor is given to register its flush: usable unbound. */
export type ShutdownRegister = (flush: ShutdownFlush, info?: ShutdownFlushInfo) => void

/** Options of {@link ShutdownRegistry.installSignalHandlers}. */
export interface SignalHandlerOptions {
  /** Milliseconds the flush may take before the process exits anyway, logging what did not finish. @defaultValue 10000 */
  readonly timeoutMs?: number
  /** The signals to handle. @defaultValue ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[]
  /** Called with the exit code (128 + the signal number) once the flush is over. @defaultValue process.exit */
  readonly exit?: (code: number) => void
  /** Where the handlers report what they do. @defaultValue JSON lines on stderr */
  readonly logger?: Logger
}

const WRITE_START = 'offload-store:write:start'
const WRITE_END = 'offload-store:write:end'
const WRITE_ERROR = 'offload-store:write:error'

/**
 * Collects every store's flush so one call at shutdown writes all pending data. `register` is an
 * arrow property, so `registry.register` can be passed around as a plain function.
 */
export class ShutdownRegistry {
  readonly #flushes = new Map<ShutdownFlush, ShutdownFlushInfo>()

  /** Adds a flush to run at shutdown, with what names it in logs. Usable unbound. */
  readonly register: ShutdownRegister = (flush, info = {}) => {
    if (typeof flush !== 'function') throw new TypeError(`register() needs a function, got ${typeof flush}`)
    this.#flushes.set(flush, info)
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
    const results = await Promise.allSettled([...this.#flushes.keys()].map(async (flush) => { await flush() }))
    const errors = results.flatMap((r) => r.status === 'rejected' ? [r.reason as unknown] : [])
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} of ${results.length} store flushes failed`)
  }

  /**
   * Opt-in: on the first of `signals` (SIGTERM and SIGINT by default), flushes every registered
   * store, then exits with the conventional code, 128 + the signal number (143 for SIGTERM, 130 for
   * SIGINT). A second signal exits at once. A flush still running after `timeoutMs` is cut off: the
   * stores that did not finish (and the writes still in flight) are logged, then the process exits.
   * Returns a function that removes the handlers.
   */
  installSignalHandlers (options: SignalHandlerOptions = {}): () => void {
    const timeoutMs = options.timeoutMs ?? 10_000
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new TypeError(`options.timeoutMs must be an integer >= 0, got ${String(timeoutMs)}`)
    const signals = options.signals ?? ['SIGTERM', 'SIGINT']
    const exit = options.exit ?? ((code: number) => process.exit(code))
    const logger = options.logger ?? stderrLogger

    // Writes in flight, by path, followed from the diagnostics channels from now on, so a hung
    // flush can be named even when its store registered without a name.
    const inFlight = new Map<string, string>()
    const onStart = (message: unknown): void => { const m = message as WriteStartMessage; inFlight.set(m.path, m.store) }
    const onEnd = (message: unknown): void => { inFlight.delete((message as WriteEndMessage | WriteErrorMessage).path) }
    diagnosticsChannel.subscribe(WRITE_START, onStart)
    diagnosticsChannel.subscribe(WRITE_END, onEnd)
    diagnosticsChannel.subscribe(WRITE_ERROR, onEnd)

    let shuttingDown = false
    const onSignal = (signal: NodeJS.Signals): void => {
      const code = 128 + (constants.signals[signal] ?? 0)
      if (shuttingDown) {
        logger.error({ signal }, 'second signal during shutdown: exiting without waiting for the flush')
        exit(code)
        return
      }
      shuttingDown = true
      logger.debug({ signal, stores: this.#flushes.size }, 'signal received: flushing every store before exit')
      this.#flushWithin(timeoutMs, logger, inFlight).finally(() => { exit(code) })
    }
    for (const signal of signals) process.on(signal, onSignal)
    return () => {
      for (const signal of signals) process.off(signal, onSignal)
      diagnosticsChannel.unsubscribe(WRITE_START, onStart)
      diagnosticsChannel.unsubscribe(WRITE_END, onEnd)
      diagnosticsChannel.unsubscribe(WRITE_ERROR, onEnd)
    }
  }

  /** Flushes every store, waiting at most `timeoutMs`; logs failures and what did not finish. Never rejects. */
  async #flushWithin (timeoutMs: number, logger: Logger, inFlight: ReadonlyMap<string, string>): Promise<void> {
    const unfinished = new Map<ShutdownFlush, string>()
    let index = 0
    const all = Promise.allSettled([...this.#flushes].map(async ([flush, info]) => {
      const label = info.name ?? info.path ?? `unnamed store #${++index}`
      unfinished.set(flush, label)
      try {
        await flush()
      } catch (err) {
        logger.error({ store: label, err }, 'flush failed at shutdown: this store\'s pending data was not written')
      } finally {
        unfinished.delete(flush)
      }
    }))
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(true) }, timeoutMs) })
    ])
    clearTimeout(timer)
    if (timedOut) {
      const writing = [...inFlight].map(([path, store]) => ({ store, path }))
      const named = [...unfinished.values()].filter((label) => !label.startsWith('unnamed store #'))
      const who = [...new Set([...writing.map((w) => w.store), ...named])]
      logger.error({ timeoutMs, writesInFlight: writing, unfinished: [...unfinished.values()] },
        `shutdown flush did not finish within ${timeoutMs} ms; exiting anyway. ${unfinished.size} of ${this.#flushes.size} stores did not finish` +
        (who.length > 0 ? `: ${who.join(', ')}` : ''))
    }
  }
}
