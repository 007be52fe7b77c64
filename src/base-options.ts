import { resolve } from 'node:path'
import { type Codec, codecs } from './codecs.js'
import { StoreInvalidOptionError, StorePathInUseError } from './errors.js'
import { type Logger, stderrLogger } from './logger.js'
import { claimPath, releasePath } from './path-claims.js'
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
}

/** {@link BaseStoreOptions} with defaults applied. */
export interface ResolvedBaseOptions<T> {
  readonly path: string
  readonly name: string
  readonly codec: Codec<T>
  readonly mode: number
  readonly logger: Logger
  readonly shutdownRegister: ShutdownRegister
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
  const resolved = resolve(path)
  return {
    path: resolved,
    name: name ?? resolved,
    codec: codec ?? codecs.json<T>(),
    mode: mode ?? 0o600,
    logger: logger ?? stderrLogger,
    shutdownRegister
  }
}

/**
 * Claims the store's path for this process and registers its flush, exactly once; a failed
 * registration releases the claim so the path is not left held by a store that never existed.
 */
export function ownPath (options: ResolvedBaseOptions<unknown>, flush: ShutdownFlush): void {
  if (!claimPath(options.path)) {
    throw new StorePathInUseError('another open store already owns this path; close() it first', { store: options.name, path: options.path })
  }
  try {
    options.shutdownRegister(flush)
  } catch (err) {
    releasePath(options.path)
    throw err
  }
}
