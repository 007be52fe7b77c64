import { resolve } from 'node:path'
import { type Codec, codecs } from './codecs.js'
import { StoreInvalidOptionError } from './errors.js'
import { type Logger, stderrLogger } from './logger.js'
import type { Durability } from './protocol.js'
import type { ShutdownRegister } from './shutdown.js'
import { isPostgresTarget, type PostgresTarget } from './postgres.js'

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
  /**
   * Milliseconds a store waits, at its first read or write, for another process that owns the
   * file to close its store or exit, before that call rejects with `ERR_STORE_LOCKED` (`Infinity`
   * waits for ever). The default outlasts a shutdown flush (10 s) with room to spare, and equals
   * the usual grace period before an orchestrator kills the old process (Kubernetes: 30 s), so a
   * rolling deploy just works. @defaultValue 30000
   */
  readonly lockTimeout?: number
  /**
   * Where the data goes: the local file at `path` (the default), or PostgreSQL, from
   * `postgres({ connectionString })`: rows keyed by the store's `name`, written from the worker
   * under a lease. @defaultValue the file at `path`
   */
  readonly target?: PostgresTarget
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
  readonly lockTimeoutMs: number
  /** A PostgreSQL target, or undefined for the file at `path`. */
  readonly target: PostgresTarget | undefined
}

/** Which store an option error belongs to, as far as its options say. */
export interface OptionOwner {
  readonly name?: string | undefined
  readonly path?: string | undefined
}

/** Throws ERR_STORE_INVALID_OPTION naming the store, the option and what it received. */
export function invalid (owner: OptionOwner, option: string, message: string, value: unknown): never {
  const got = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'function' ? 'a function' : String(value)
  throw new StoreInvalidOptionError(`options.${option} ${message}, got ${got}`, { store: owner.name, path: owner.path })
}

/** The options every store takes; a store class lists its own on top. */
const BASE_OPTIONS = ['path', 'shutdownRegister', 'codec', 'name', 'mode', 'logger', 'durability', 'maxDelay', 'retry', 'onCorrupt', 'lockTimeout', 'target'] as const

/** Which store class is being built, and the options it accepts beyond the base ones. */
export interface StoreKind {
  /** `'Store'` or `'KeyedStore'`, for messages. */
  readonly kind: string
  readonly options: readonly string[]
}

/**
 * Validates the options every store takes, one check per option, and applies defaults. An option
 * the store does not know is an error (a typo, or an option of the other store class), never
 * silently ignored.
 */
export function resolveBaseOptions<T> (options: BaseStoreOptions<T>, store: StoreKind): ResolvedBaseOptions<T> {
  if (options === null || typeof options !== 'object') throw new StoreInvalidOptionError(`new ${store.kind}(options): options must be an object, got ${String(options)}`)
  const { path, shutdownRegister, codec, name, mode, logger } = options
  if (typeof path !== 'string' || path.length === 0) invalid({ name: typeof name === 'string' ? name : undefined }, 'path', 'must be a non-empty string', path)
  const resolved = resolve(path)
  const owner = { name: typeof name === 'string' && name.length > 0 ? name : resolved, path: resolved }
  const known = new Set<string>([...BASE_OPTIONS, ...store.options])
  for (const key of Object.keys(options)) {
    if (!known.has(key)) invalid(owner, key, `is not an option of ${store.kind}; it accepts ${[...known].join(', ')}`, (options as unknown as Record<string, unknown>)[key])
  }
  if (typeof shutdownRegister !== 'function') invalid(owner, 'shutdownRegister', 'must be a function such as registry.register', shutdownRegister)
  if (codec !== undefined && (codec === null || typeof codec !== 'object' || typeof codec.spec?.kind !== 'string')) invalid(owner, 'codec', 'must come from codecs.json(), codecs.schema(), codecs.module() or codecs.raw()', codec)
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) invalid(owner, 'name', 'must be a non-empty string', name)
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) invalid(owner, 'mode', 'must be a file mode such as 0o600', mode)
  if (logger !== undefined && (logger === null || typeof logger !== 'object' || ['error', 'warn', 'debug'].some((level) => typeof (logger as unknown as Record<string, unknown>)[level] !== 'function'))) {
    invalid(owner, 'logger', 'must have error, warn and debug methods', logger)
  }
  const { durability = 'full', maxDelay = Infinity, retry, onCorrupt = 'throw', lockTimeout = 30_000 } = options
  if (!['full', 'file', 'none'].includes(durability)) invalid(owner, 'durability', "must be 'full', 'file' or 'none'", durability)
  if (typeof maxDelay !== 'number' || Number.isNaN(maxDelay) || maxDelay < 0) invalid(owner, 'maxDelay', 'must be a number of milliseconds >= 0', maxDelay)
  if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') invalid(owner, 'onCorrupt', "must be 'throw' or 'quarantine'", onCorrupt)
  if (typeof lockTimeout !== 'number' || Number.isNaN(lockTimeout) || lockTimeout < 0) invalid(owner, 'lockTimeout', 'must be a number of milliseconds >= 0 (Infinity waits for ever)', lockTimeout)
  const { target } = options
  if (target !== undefined && !isPostgresTarget(target)) invalid(owner, 'target', 'must come from postgres({ ... }) or be left out for the file at path', target)
  if (target !== undefined && onCorrupt === 'quarantine') invalid(owner, 'onCorrupt', "cannot be 'quarantine' with a PostgreSQL target (there is no file to move aside)", onCorrupt)
  return {
    target,
    path: resolved,
    name: name ?? resolved,
    codec: codec ?? codecs.json<T>(),
    mode: mode ?? 0o600,
    logger: logger ?? stderrLogger,
    shutdownRegister,
    durability,
    maxDelayMs: maxDelay,
    retry: resolveRetry(owner, retry),
    onCorrupt,
    lockTimeoutMs: lockTimeout
  }
}

function resolveRetry (owner: OptionOwner, retry: BaseStoreOptions<unknown>['retry']): ResolvedBaseOptions<unknown>['retry'] {
  if (retry === false) return false
  if (retry !== undefined && (retry === null || typeof retry !== 'object')) invalid(owner, 'retry', 'must be false or { initialMs, maxMs }', retry)
  const { initialMs = 1000, maxMs = 60_000 } = retry ?? {}
  if (typeof initialMs !== 'number' || !(initialMs > 0) || !Number.isFinite(initialMs)) invalid(owner, 'retry.initialMs', 'must be a finite number > 0', initialMs)
  if (typeof maxMs !== 'number' || !(maxMs >= initialMs) || !Number.isFinite(maxMs)) invalid(owner, 'retry.maxMs', 'must be a finite number >= retry.initialMs', maxMs)
  return { initialMs, maxMs }
}
