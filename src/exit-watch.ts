import { performance } from 'node:perf_hooks'
import { onExit } from 'signal-exit'
import type { Logger } from './logger.js'
import type { ShutdownFlush } from './shutdown.js'

// What happens to data a store has not written yet when the process ends without a shutdown flush:
// - the event loop empties (a script is done): at 'beforeExit' every open store with data waiting
//   for its deadline or a retry is flushed, so the script ends promptly and nothing is lost (the
//   debounce timers are unref'd for this);
// - process.exit(), or a signal that nothing else handles: nothing can be written any more (no
//   more event-loop turns), so each store with unwritten data says so, synchronously, through its
//   own logger; a signal then ends the process as it would have without us (signal-exit re-raises).
// The process hooks exist only while a store is open, so an application without open stores runs
// with no listener of ours.

/** What the exit watch reads from a store's write scheduler. */
export interface UnsavedState {
  /** `performance.now()` of the oldest change not yet durable; undefined when everything is. */
  readonly unsavedSince: number | undefined
  /** True when data waits for a deadline or a retry (not only for a write already running). */
  readonly hasPending: boolean
}

/** One open store, as the exit watch knows it. */
export interface WatchedStore {
  readonly name: string
  readonly path: string
  readonly logger: Logger
  /** The store's shutdown flush: writes what it holds. */
  readonly flush: ShutdownFlush
  readonly state: UnsavedState
}

interface Entry extends WatchedStore {
  // Set when the flush at 'beforeExit' failed: the next 'beforeExit' must not retry it forever.
  failedAtExit: boolean
}

const watched = new Set<Entry>()
let unhookExit: (() => void) | undefined
let unhooking: NodeJS.Immediate | undefined

const noop = (): void => {}

/**
 * Watches an open store until the returned function is called (by `close()`): its pending data is
 * written when the event loop empties, and logged when the process ends before it could be.
 */
export function watchUntilExit (store: WatchedStore): () => void {
  const entry: Entry = { ...store, failedAtExit: false }
  watched.add(entry)
  if (unhooking !== undefined) {
    clearImmediate(unhooking)
    unhooking = undefined
  }
  if (unhookExit === undefined) {
    process.on('beforeExit', onBeforeExit)
    unhookExit = onExit(onProcessExit)
  }
  return () => {
    if (!watched.delete(entry) || watched.size > 0 || unhookExit === undefined) return
    // Removed on the next turn of the loop, not at once: a program that closes its last store and
    // opens another (in a loop, say) keeps the hooks instead of re-installing a listener on every
    // signal each time, which costs about 0.1 ms and leaves signal handles to close on a later turn.
    unhooking ??= setImmediate(unhook).unref()
  }
}

function unhook (): void {
  unhooking = undefined
  if (watched.size > 0) return
  process.off('beforeExit', onBeforeExit)
  unhookExit?.()
  unhookExit = undefined
}

function onBeforeExit (): void {
  const due = [...watched].filter((entry) => entry.state.hasPending && !entry.failedAtExit)
  if (due.length === 0) return
  // Holds the loop open until every flush settles, whatever the pool's threads do in between.
  const hold = setInterval(noop, 1 << 30)
  Promise.allSettled(due.map(async (entry) => {
    try {
      await entry.flush()
    } catch (err) {
      entry.failedAtExit = true
      logError(entry.logger, { store: entry.name, path: entry.path, err }, 'the write of the pending data, as the process ran out of work, failed')
    }
  })).finally(() => { clearInterval(hold) })
}

function onProcessExit (code: number | null | undefined, signal: NodeJS.Signals | null): void {
  const now = performance.now()
  for (const entry of watched) {
    const since = entry.state.unsavedSince
    if (since === undefined) continue
    const fields = {
      store: entry.name,
      path: entry.path,
      pendingMs: Math.round(now - since),
      inFlight: !entry.state.hasPending,
      ...(signal === null ? { exitCode: code ?? 0 } : { signal })
    }
    logError(entry.logger, fields, signal === null
      ? 'the process is exiting and this store\'s data has not been written: it is lost (await close() or registry.flush() before process.exit())'
      : `${signal} ends the process and this store's data has not been written: it is lost (registry.installSignalHandlers() flushes every store on a signal)`)
  }
}

// A logger that throws must not stop the other stores' lines, nor, at a signal, the re-raise.
function logError (logger: Logger, fields: object, message: string): void {
  try {
    logger.error(fields, message)
  } catch {}
}
