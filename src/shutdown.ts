import diagnosticsChannel from 'node:diagnostics_channel'
import { constants } from 'node:os'
import { channelNames, type WriteErrorMessage, type WriteEndMessage, type WriteStartMessage } from './channels.js'
import { StoreFlushError, StoreFlushTimeoutError, StoreInvalidArgumentError } from './errors.js'
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

/** What {@link ShutdownRegistry.flush} found, store by store (by name, else path). */
export interface FlushReport {
  /** Stores whose flush finished: everything they held is durable. */
  readonly finished: readonly string[]
  /** Stores whose flush failed, with the error. */
  readonly failed: ReadonlyArray<{ readonly store: string, readonly error: unknown }>
  /** Stores whose flush was still running when `timeoutMs` ran out. */
  readonly unfinished: readonly string[]
}

/** Options of {@link ShutdownRegistry.flush}. */
export interface FlushOptions {
  /** Stop waiting after this many milliseconds; the stores still flushing are reported as unfinished. */
  readonly timeoutMs?: number
}

/**
 * What a store's constructor is given to register its flush: usable unbound. It may return a
 * function that unregisters the flush, which the store calls when it is closed; a register
 * function that returns nothing works too, and then keeps whatever it was given.
 */
export type ShutdownRegister = (flush: ShutdownFlush, info?: ShutdownFlushInfo) => (() => void) | undefined | void

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

const { writeStart: WRITE_START, writeEnd: WRITE_END, writeError: WRITE_ERROR } = channelNames

/**
 * Collects every store's flush so one call at shutdown writes all pending data. `register` is an
 * arrow property, so `registry.register` can be passed around as a plain function.
 */
export class ShutdownRegistry {
  readonly #flushes = new Map<ShutdownFlush, ShutdownFlushInfo>()

  /**
   * Adds a flush to run at shutdown, with what names it in logs, and returns a function that
   * removes it again (a closed store calls it, so the registry holds only open stores). Usable unbound.
   */
  readonly register = (flush: ShutdownFlush, info: ShutdownFlushInfo = {}): () => void => {
    if (typeof flush !== 'function') throw new StoreInvalidArgumentError(`register() needs a function, got ${typeof flush}`)
    // A copy per registration: an unregister kept from an earlier registration of the same flush
    // must not remove a later one.
    const entry: ShutdownFlushInfo = { ...info }
    this.#flushes.set(flush, entry)
    return () => {
      if (this.#flushes.get(flush) === entry) this.#flushes.delete(flush)
    }
  }

  /** Number of registered flushes. */
  get size (): number {
    return this.#flushes.size
  }

  /**
   * Runs every registered flush concurrently and waits for all of them, even when some fail (or,
   * with `timeoutMs`, until that runs out), and resolves with what each store did. When any failed
   * or did not finish, it rejects instead with `ERR_STORE_FLUSH` ({@link StoreFlushError}), naming
   * those stores, with every failure in `errors` (a timed-out store counts as one,
   * `ERR_STORE_FLUSH_TIMEOUT`) and the same report in `report`. Safe to call more than once.
   */
  async flush (options: FlushOptions = {}): Promise<FlushReport> {
    const { timeoutMs } = options
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0)) {
      throw new StoreInvalidArgumentError(`flush(): options.timeoutMs must be an integer >= 0, got ${String(timeoutMs)}`)
    }
    const report = await this.#flushAll(timeoutMs)
    const errors = [
      ...report.failed.map((f) => f.error),
      ...report.unfinished.map((store) => new StoreFlushTimeoutError(`the shutdown flush did not finish within ${String(timeoutMs)} ms`, { store }))
    ]
    if (errors.length > 0) {
      const total = report.finished.length + report.failed.length + report.unfinished.length
      const named = [
        ...report.failed.map((f) => `${f.store} (${(f.error as { code?: unknown } | undefined)?.code as string | undefined ?? (f.error as Error | undefined)?.message ?? 'failed'})`),
        ...report.unfinished.map((store) => `${store} (did not finish within ${String(timeoutMs)} ms)`)
      ]
      throw new StoreFlushError(`${errors.length} of ${total} store flushes failed or did not finish: ${named.join(', ')}`, {}, errors, report)
    }
    return report
  }

  async #flushAll (timeoutMs: number | undefined): Promise<FlushReport> {
    const finished: string[] = []
    const failed: Array<{ store: string, error: unknown }> = []
    const unfinished = new Set<string>()
    let index = 0
    const all = Promise.allSettled([...this.#flushes].map(async ([flush, info]) => {
      const label = info.name ?? info.path ?? `unnamed store #${++index}`
      unfinished.add(label)
      try {
        await flush()
        finished.push(label)
      } catch (error) {
        failed.push({ store: label, error })
      } finally {
        unfinished.delete(label)
      }
    }))
    if (timeoutMs === undefined) {
      await all
    } else {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([all, new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs) })])
      clearTimeout(timer)
    }
    return { finished: [...finished], failed: [...failed], unfinished: [...unfinished] }
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
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new StoreInvalidArgumentError(`installSignalHandlers(): options.timeoutMs must be an integer >= 0, got ${String(timeoutMs)}`)
    const signals = options.signals ?? ['SIGTERM', 'SIGINT']
    if (!Array.isArray(signals) || signals.some((signal) => typeof signal !== 'string' || !(signal in constants.signals))) {
      throw new StoreInvalidArgumentError(`installSignalHandlers(): options.signals must be an array of signal names such as ['SIGTERM', 'SIGINT'], got ${JSON.stringify(signals)}`)
    }
    if (options.exit !== undefined && typeof options.exit !== 'function') throw new StoreInvalidArgumentError(`installSignalHandlers(): options.exit must be a function (code) => void, got ${typeof options.exit}`)
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
    const report = await this.#flushAll(timeoutMs)
    for (const { store, error } of report.failed) {
      logger.error({ store, err: error }, 'flush failed at shutdown: this store\'s pending data was not written')
    }
    if (report.unfinished.length > 0) {
      const writing = [...inFlight].map(([path, store]) => ({ store, path }))
      const named = report.unfinished.filter((label) => !label.startsWith('unnamed store #'))
      const who = [...new Set([...writing.map((w) => w.store), ...named])]
      logger.error({ timeoutMs, writesInFlight: writing, unfinished: report.unfinished },
        `shutdown flush did not finish within ${timeoutMs} ms; exiting anyway. ${report.unfinished.length} of ${this.#flushes.size} stores did not finish` +
        (who.length > 0 ? `: ${who.join(', ')}` : ''))
    }
  }
}
