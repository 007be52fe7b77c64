import { resolve } from 'node:path'
import { type Codec, codecs } from './codecs.js'
import { StoreInvalidOptionError, StorePathInUseError } from './errors.js'
import { type Logger, stderrLogger } from './logger.js'
import { claimPath, releasePath } from './path-claims.js'
import { type UnsavedState, watchUntilExit } from './exit-watch.js'
import type { Durability } from './protocol.js'
import type { ShutdownFlush, ShutdownRegister } from './shutdown.js'

/** Options every store takes. */
export interface BaseStoreOptions<T> {
  /** The file this store owns. Relative paths resolve against the working directory. */
  readonly path: string
  /** Called exactly once by the constructor with the store's flush, e.g. `registry.register`. */
  readonly shutdownRegister: ShutdownRegister
  /** How the value becomes bytes. @defaultValue codecs.json() */
  readonly codec?: Codec<T>
  /** Used in every log line and error. @defaultValue the resolved path */
  readonly name?: string
  /** File mode, set on the temp file before any data is written. @defaultValue 0o600 */
  readonly mode?: number
  /** A pino-compatible logger. @defaultValue JSON lines on stderr */
  readonly logger?: Logger
  /**
   * How far a write goes before it is acknowledged: `'full'` fsyncs the file and its directory,
   * `'file'` only the file (a power cut may lose the rename), `'none'` neither (for data that can be
   * rebuilt; still atomic against a process crash). @defaultValue 'full'
   */
  readonly durability?: Durability
  /**
   * Cap on the debounce, in milliseconds: data given to a delayed save is written at most this long
   * after the first unwritten request, however often the deadline moves. @defaultValue Infinity
   */
  readonly maxDelay?: number
  /**
   * Retry kept data after a failed write, with exponential backoff from `initialMs` to `maxMs`;
   * `false` waits for the next save or flush. @defaultValue { initialMs: 1000, maxMs: 60000 }
   */
  readonly retry?: false | { readonly initialMs?: number, readonly maxMs?: number }
  /**
   * What `load()` does with a file the codec cannot decode: `'throw'` rejects with
   * `ERR_STORE_DECODE`; `'quarantine'` renames it to `<path>.corrupt.<timestamp>`, logs, and
   * loads as if there were no file. @defaultValue 'throw'
   */
  readonly onCorrupt?: 'throw' | 'quarantine'
}

/** {@link BaseStoreOptions} with defaults applied. */
export interface ResolvedBaseOptions<T> {
  readonly path: string
  readonly name: string
  readonly codec: Codec<T>
  readonly mode: number
  readonly logger: Logger
  readonly shutdownRegister: ShutdownRegister
  readonly durability: Durability
  readonly maxDelayMs: number
  readonly retry: { readonly initialMs: number, readonly maxMs: number } | false
  readonly onCorrupt: 'throw' | 'quarantine'
}

/** Throws ERR_STORE_INVALID_OPTION naming the option and what it received. */
export function invalid (name: string, message: string, value: unknown): never {
  throw new StoreInvalidOptionError(`options.${name} ${message}, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
}

/** Validates the options every store takes, one check per option, and applies defaults. */
export function resolveBaseOptions<T> (options: BaseStoreOptions<T>): ResolvedBaseOptions<T> {
  if (options === null || typeof options !== 'object') throw new StoreInvalidOptionError(`options must be an object, got ${String(options)}`)
  const { path, shutdownRegister, codec, name, mode, logger } = options
  if (typeof path !== 'string' || path.length === 0) invalid('path', 'must be a non-empty string', path)
  if (typeof shutdownRegister !== 'function') invalid('shutdownRegister', 'must be a function such as registry.register', shutdownRegister)
  if (codec !== undefined && (codec === null || typeof codec !== 'object' || typeof codec.spec?.kind !== 'string')) invalid('codec', 'must come from codecs.json(), codecs.schema(), codecs.module() or codecs.raw()', codec)
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) invalid('name', 'must be a non-empty string', name)
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) invalid('mode', 'must be a file mode such as 0o600', mode)
  if (logger !== undefined && (logger === null || typeof logger !== 'object' || ['error', 'warn', 'debug'].some((level) => typeof (logger as unknown as Record<string, unknown>)[level] !== 'function'))) {
    invalid('logger', 'must have error, warn and debug methods', logger)
  }
  const { durability = 'full', maxDelay = Infinity, retry, onCorrupt = 'throw' } = options
  if (!['full', 'file', 'none'].includes(durability)) invalid('durability', "must be 'full', 'file' or 'none'", durability)
  if (typeof maxDelay !== 'number' || Number.isNaN(maxDelay) || maxDelay < 0) invalid('maxDelay', 'must be a number of milliseconds >= 0', maxDelay)
  if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') invalid('onCorrupt', "must be 'throw' or 'quarantine'", onCorrupt)
  const resolved = resolve(path)
  return {
    path: resolved,
    name: name ?? resolved,
    codec: codec ?? codecs.json<T>(),
    mode: mode ?? 0o600,
    logger: logger ?? stderrLogger,
    shutdownRegister,
    durability,
    maxDelayMs: maxDelay,
    retry: resolveRetry(retry),
    onCorrupt
  }
}

function resolveRetry (retry: BaseStoreOptions<unknown>['retry']): ResolvedBaseOptions<unknown>['retry'] {
  if (retry === false) return false
  if (retry !== undefined && (retry === null || typeof retry !== 'object')) invalid('retry', 'must be false or { initialMs, maxMs }', retry)
  const { initialMs = 1000, maxMs = 60_000 } = retry ?? {}
  if (typeof initialMs !== 'number' || !(initialMs > 0) || !Number.isFinite(initialMs)) invalid('retry.initialMs', 'must be a finite number > 0', initialMs)
  if (typeof maxMs !== 'number' || !(maxMs >= initialMs) || !Number.isFinite(maxMs)) invalid('retry.maxMs', 'must be a finite number >= retry.initialMs', maxMs)
  return { initialMs, maxMs }
}

/**
 * Claims the store's path for this process, registers its flush, exactly once, and watches its
 * unwritten data until exit (`state` is its write scheduler); a failed registration releases the
 * claim so the path is not left held by a store that never existed. Returns `release()`, for
 * `close()`: it drops the claim, unregisters the flush (when the register function returned a way
 * to) and ends the watch, so a closed store leaves nothing behind. Idempotent.
 */
export function ownPath (options: ResolvedBaseOptions<unknown>, flush: ShutdownFlush, state: UnsavedState): () => void {
  if (!claimPath(options.path)) {
    throw new StorePathInUseError('another open store already owns this path; close() it first', { store: options.name, path: options.path })
  }
  let unregister: unknown
  try {
    unregister = options.shutdownRegister(flush, { name: options.name, path: options.path })
  } catch (err) {
    releasePath(options.path)
    throw err
  }
  const unwatch = watchUntilExit({ name: options.name, path: options.path, logger: options.logger, flush, state })
  let released = false
  return () => {
    if (released) return
    released = true
    unwatch()
    releasePath(options.path)
    if (typeof unregister === 'function') unregister()
  }
}
