import type { LockHolder } from './lock-file.js'
import type { FlushReport } from './shutdown.js'

/** Where a store error happened: the store's name and its resolved path. */
export interface StoreErrorContext {
  /** The store's name (its path unless a name was given). */
  readonly store?: string | undefined
  /** The store's resolved file path. */
  readonly path?: string | undefined
  /** The underlying error, when there is one. */
  readonly cause?: unknown
}

function where (context: StoreErrorContext): string {
  if (context.store === undefined && context.path === undefined) return ''
  if (context.store === context.path || context.store === undefined) return `store ${JSON.stringify(context.path)}: `
  return `store ${JSON.stringify(context.store)} (${context.path ?? '?'}): `
}

/** Base class of every error this library throws or rejects with; branch on `err.code`. */
export class StoreError extends Error {
  /** A stable, documented code such as `ERR_STORE_WRITE`. */
  readonly code: StoreErrorCode
  /** The name of the store the error belongs to, when it belongs to one. */
  readonly store: string | undefined
  /** The resolved path of the store's file, when it belongs to one. */
  readonly path: string | undefined

  constructor (code: StoreErrorCode, message: string, context: StoreErrorContext = {}) {
    super(where(context) + message, context.cause === undefined ? undefined : { cause: context.cause })
    this.code = code
    this.store = context.store
    this.path = context.path
  }

  override get name (): string {
    return this.constructor.name
  }
}

/** The file exists but the codec could not decode it; the decoder's error is the `cause`. */
export class StoreDecodeError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_DECODE', message, context)
  }
}

/** The file could not be read for a reason other than not existing (EACCES, EISDIR, ...). */
export class StoreReadError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_READ', message, context)
  }
}

/** The value could not be encoded (the encoder threw or returned neither a string nor bytes). */
export class StoreEncodeError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_ENCODE', message, context)
  }
}

/** The write failed before the rename: the previous file is untouched and no temp file is left. */
export class StoreWriteError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_WRITE', message, context)
  }
}

/**
 * The new file was renamed into place but the directory fsync failed: the content is visible,
 * but whether it survives a power cut is unknown.
 */
export class StoreDurabilityError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_DURABILITY_UNKNOWN', message, context)
  }
}

/** The value cannot cross to a worker thread as it is (a function, a symbol, a socket, a class with `toJSON`). */
export class StoreDataCloneError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_DATA_CLONE', message, context)
  }
}

/** Another open store in this process already owns this file (under any name), or the file has other names (hard links). */
export class StorePathInUseError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_PATH_IN_USE', message, context)
  }
}

/**
 * Another process owns the store's file and did not release it within `lockTimeout`; `holder`
 * says who (pid, host, since), when its lock file says.
 */
export class StoreLockedError extends StoreError {
  /** The owner when the wait ended, as its lock file says; undefined when it says nothing readable. */
  readonly holder: LockHolder | undefined

  constructor (message: string, context: StoreErrorContext = {}, holder?: LockHolder) {
    super('ERR_STORE_LOCKED', message, context)
    this.holder = holder
  }
}

/** The store, or the pool it writes through, was closed. */
export class StoreClosedError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_CLOSED', message, context)
  }
}

/** An option given to a constructor is invalid; the message names the option and what was received. */
export class StoreInvalidOptionError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_INVALID_OPTION', message, context)
  }
}

/** An argument given to a method or a factory is invalid; the message names it and what was received. */
export class StoreInvalidArgumentError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_INVALID_ARGUMENT', message, context)
  }
}

/** The call is not valid in the store's current state (such as `load()` after unsaved changes). */
export class StoreStateError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_STATE', message, context)
  }
}

/** The file's data version is newer than this code's, or migrating older data failed or is impossible. */
export class StoreVersionError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_VERSION', message, context)
  }
}

/** A shutdown flush with a timeout ran out of time before this store finished writing. */
export class StoreFlushTimeoutError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_FLUSH_TIMEOUT', message, context)
  }
}

/**
 * A shutdown flush in which some stores failed or did not finish: `errors` holds each failure (a
 * store cut off by `timeoutMs` counts as one, `ERR_STORE_FLUSH_TIMEOUT`) and `report` what every
 * store did. The message names the stores.
 */
export class StoreFlushError extends StoreError {
  /** Each store's failure, in the order of `report.failed`, then `report.unfinished`. */
  readonly errors: readonly unknown[]
  /** What every store did: finished, failed, or did not finish. */
  readonly report: FlushReport

  constructor (message: string, context: StoreErrorContext = {}, errors: readonly unknown[] = [], report: FlushReport = { finished: [], failed: [], unfinished: [] }) {
    super('ERR_STORE_FLUSH', message, context)
    this.errors = errors
    this.report = report
  }
}

/**
 * A PostgreSQL target's lease belongs to another owner: taking it ran out of `lockTimeout`, or
 * this owner was taken over (its fencing token is stale), so its write was refused and the newer
 * owner's data is untouched.
 */
export class StoreFencedError extends StoreError {
  constructor (message: string, context: StoreErrorContext = {}) {
    super('ERR_STORE_FENCED', message, context)
  }
}

/** Every error class with its code, for documentation checks and exhaustive handling. */
export const errorCodes = {
  ERR_STORE_DECODE: StoreDecodeError,
  ERR_STORE_READ: StoreReadError,
  ERR_STORE_ENCODE: StoreEncodeError,
  ERR_STORE_WRITE: StoreWriteError,
  ERR_STORE_DURABILITY_UNKNOWN: StoreDurabilityError,
  ERR_STORE_DATA_CLONE: StoreDataCloneError,
  ERR_STORE_PATH_IN_USE: StorePathInUseError,
  ERR_STORE_LOCKED: StoreLockedError,
  ERR_STORE_CLOSED: StoreClosedError,
  ERR_STORE_INVALID_OPTION: StoreInvalidOptionError,
  ERR_STORE_INVALID_ARGUMENT: StoreInvalidArgumentError,
  ERR_STORE_STATE: StoreStateError,
  ERR_STORE_VERSION: StoreVersionError,
  ERR_STORE_FLUSH_TIMEOUT: StoreFlushTimeoutError,
  ERR_STORE_FLUSH: StoreFlushError,
  ERR_STORE_FENCED: StoreFencedError
} as const

/** A code listed in {@link errorCodes}. */
export type StoreErrorCode = keyof typeof errorCodes
