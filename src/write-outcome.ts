import {
  type StoreError,
  type StoreErrorContext,
  StoreClosedError,
  StoreDataCloneError,
  StoreDurabilityError,
  StoreEncodeError,
  StoreFencedError,
  StoreWriteError
} from './errors.js'
import { jsonProblemError } from './json-fidelity.js'
import type { SerializedError, WriteResult } from './protocol.js'

// Turns what came back from a worker (an answer or a rejection) into the StoreError a caller sees,
// and remembers which failures would only repeat if the same data were written again.

const permanent = new WeakSet<object>()

/** A worker request (`what`: 'write', 'load') outlived `writeTimeout`; its worker was terminated. */
export class WriteTimeoutError extends Error {
  override readonly name = 'WriteTimeoutError'

  constructor (what: string, timeoutMs: number, outcome = 'its worker was terminated') {
    super(`the ${what} took longer than writeTimeout (${timeoutMs} ms); ${outcome}`)
  }
}

/** Marks `err` as one that writing the same data again cannot fix. */
export function markPermanent<E extends object> (err: E): E {
  permanent.add(err)
  return err
}

/** True for failures marked by {@link markPermanent}: the data is not kept for a retry. */
export function isPermanent (err: unknown): boolean {
  return typeof err === 'object' && err !== null && permanent.has(err)
}

/** True for the RangeError V8 throws when a recursive step (a copy, JSON.stringify) overflows the stack. */
export function isStackOverflow (err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message)
}

/**
 * The permanent error for a value (at `at`, a `$`-less path, when known) nested too deeply for the
 * structured clone that copies it to a worker: the copy runs on this thread, so no worker was hurt.
 */
export function tooDeepToCopy (context: StoreErrorContext, at = ''): StoreDataCloneError {
  return markPermanent(new StoreDataCloneError(`the value${at === '' ? '' : ` at $${at}`} is nested too deeply to copy to a worker: the structured clone overflowed the stack (it handles about 3,000 levels); flatten it`, context))
}

/** The permanent error for a value the structured clone refused (`message` says what it met), with what to do about it. */
export function notCopyable (message: string, context: StoreErrorContext): StoreDataCloneError {
  return markPermanent(new StoreDataCloneError(`the value cannot be copied to a worker thread (${message}); remove functions, symbols, sockets and other host objects, or convert them to plain data first`, context))
}

/** Rebuilds an error that crossed from a worker as data, with its `code`, `syscall` and `path`. */
export function rebuildError (data: SerializedError): Error {
  const err = new Error(data.message) as NodeJS.ErrnoException
  err.name = data.name
  if (data.stack !== undefined) err.stack = data.stack
  if (data.code !== undefined) err.code = data.code
  if (data.syscall !== undefined) err.syscall = data.syscall
  if (data.path !== undefined) err.path = data.path
  if (data.errno !== undefined) err.errno = data.errno
  return err
}

/** The StoreError for a write the worker answered as failed. */
export function failureFromResult (result: Extract<WriteResult, { ok: false }>, context: StoreErrorContext): StoreError {
  // The same error, message and permanence as when the main thread finds the problem itself.
  if (result.stage === 'check') return jsonProblemError(result.problem, context)
  const cause = rebuildError(result.cause)
  const message = `${result.message}: ${cause.message}`
  const withCause = { ...context, cause }
  switch (result.stage) {
    case 'encode': return markPermanent(new StoreEncodeError(message, withCause))
    case 'write': return new StoreWriteError(message, withCause)
    case 'dirsync': return new StoreDurabilityError(message, withCause)
    // Permanent: writing again with the same stale token would be refused the same way.
    case 'fenced': return markPermanent(new StoreFencedError(message, withCause))
    default: throw new Error(`unknown failure stage ${JSON.stringify((result as { stage: unknown }).stage)}: this should not happen`)
  }
}

/** The StoreError for a write whose worker call rejected: pool closed, value not cloneable, timeout, worker died. */
export function failureFromRejection (err: unknown, context: StoreErrorContext): StoreError {
  const withCause = { ...context, cause: err }
  // Permanent: a closed pool will not reopen, so retrying the kept data would only fail again.
  if (err instanceof StoreClosedError) return markPermanent(new StoreClosedError(`its writer pool is closed: ${err.message}`, withCause))
  if (isStackOverflow(err)) return tooDeepToCopy(withCause)
  if ((err as Error | undefined)?.name === 'DataCloneError') return notCopyable((err as Error).message, withCause)
  if (err instanceof WriteTimeoutError) return new StoreWriteError(err.message, withCause)
  return new StoreWriteError(`the worker died during the write (${(err as Error).message}); the next write uses a fresh worker`, withCause)
}
