import { type StoreErrorContext, StoreDataCloneError, StoreEncodeError } from './errors.js'
import { type FidelityProblem, findJsonProblem, findJsonProblemExact, type JsonCheckOptions, nameOf } from './json-problems.js'
import { isStackOverflow, markPermanent } from './write-outcome.js'

// The main thread's side of the JSON check: the walks (src/json-problems.ts) say where a value
// would not be held faithfully; this module turns what they found into the StoreError a save
// rejects with, whichever thread found it.

/**
 * The permanent StoreError for `problem` (found on this thread or sent back by a worker), its path
 * prefixed with `at`: ERR_STORE_ENCODE, or ERR_STORE_DATA_CLONE for what a clone cannot copy.
 */
export function jsonProblemError (problem: FidelityProblem, context: StoreErrorContext, at = ''): StoreEncodeError | StoreDataCloneError {
  const where = `$${at}${problem.at.slice(1)}`
  switch (problem.kind) {
    case 'cycle':
      return markPermanent(new StoreEncodeError(`the value has a cycle at ${where}; JSON cannot encode it`, context))
    case 'toJSON':
    case 'clone':
      return markPermanent(new StoreDataCloneError(`${problem.found} at ${where}: ${problem.fix}`, context))
    case 'unencodable':
      return markPermanent(new StoreEncodeError(`${problem.found} at ${where}: ${problem.fix}`, context))
    case 'lossy':
      return markPermanent(new StoreEncodeError(`${problem.found} at ${where}: ${problem.fix}, or accept JSON's rules with the codec's { lossy: true } option`, context))
    case 'dropped':
      return markPermanent(new StoreDataCloneError(`${problem.found} at ${where}: ${problem.fix}, or accept JSON's rules with the codec's { lossy: true } option`, context))
    default:
      throw new Error(`unknown problem kind ${JSON.stringify((problem as { kind: unknown }).kind)}: this should not happen`)
  }
}

/**
 * Throws what a save of `value` under a JSON codec whose encoder runs in a worker (on a structured
 * clone) must reject with, naming the path (prefixed with `at`); `budget` bounds the walk without
 * an identity set (a cycle or heavy sharing past it is walked again with one): ERR_STORE_ENCODE for a cycle, a
 * BigInt or (unless `lossy`) a value JSON would drop or change; ERR_STORE_DATA_CLONE for what a
 * clone cannot copy or a toJSON() the worker could not call. Every such error is permanent.
 */
export function assertJsonFaithful (value: unknown, context: StoreErrorContext, at = '', options: { readonly lossy?: boolean | undefined, readonly budget?: number | undefined } = {}): void {
  let problem: FidelityProblem | undefined
  try {
    problem = findJsonProblem(value, { lossy: options.lossy, cloned: true }, options.budget)
  } catch (err) {
    throw readFailed(err, context)
  }
  if (problem !== undefined) throw jsonProblemError(problem, context, at)
}

// A getter or a Proxy trap threw while the value was read: reading it again would throw again.
function readFailed (err: unknown, context: StoreErrorContext): Error {
  return markPermanent(new StoreEncodeError(`reading the value threw: ${err instanceof Error ? err.message : String(err)}`, { ...context, cause: err }))
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object (${nameOf(value)})`
  return `a ${typeof value}`
}

/**
 * `JSON.stringify(data, null, space)` on this thread, refusing what it would write unfaithfully:
 * the text returned is exactly what JSON.stringify gives, toJSON() included. `value` is the part
 * the user gave (`data` may wrap it in an envelope), walked for problems and named in paths.
 * Throws a permanent ERR_STORE_ENCODE (or ERR_STORE_DATA_CLONE never: nothing is cloned).
 */
export function stringifyFaithful (data: unknown, value: unknown, space: string | number | undefined, context: StoreErrorContext, options: { readonly lossy?: boolean | undefined } = {}): string {
  const check: JsonCheckOptions = { lossy: options.lossy, cloned: false }
  let text: string | undefined
  try {
    text = JSON.stringify(data, null, space) as string | undefined
  } catch (err) {
    throw explainFailure(value, err, check, context)
  }
  if (text === undefined) {
    throw markPermanent(new StoreEncodeError(`JSON.stringify returned undefined for ${describe(value)}; there is nothing to write`, context))
  }
  // Under { lossy: true } nothing is left to refuse once JSON.stringify succeeded: it threw on a
  // cycle and a BigInt, and the rest is what the option accepts. The text is the answer.
  if (options.lossy === true) return text
  // JSON.stringify succeeded, so the value is acyclic and every object it wrote costs at least two
  // characters of text: a walk of more objects than that means a getter changed the value.
  let problem: FidelityProblem | undefined
  try {
    problem = findJsonProblem(value, check, text.length)
  } catch (err) {
    throw readFailed(err, context)
  }
  if (problem !== undefined) throw jsonProblemError(problem, context, '')
  return text
}

function explainFailure (value: unknown, err: unknown, check: JsonCheckOptions, context: StoreErrorContext): Error {
  const withCause = { ...context, cause: err }
  // A cycle or a BigInt (JSON.stringify does not say where), or a long cycle that overflowed its
  // stack first: the walk names the place, which is more use than "too deep".
  let problem: FidelityProblem | undefined
  try {
    problem = findJsonProblemExact(value, check)
  } catch {
    problem = undefined // the value cannot even be read twice alike: JSON.stringify's own error says more
  }
  if (problem !== undefined) return jsonProblemError(problem, withCause, '')
  const message = err instanceof Error ? err.message : String(err)
  if (isStackOverflow(err)) {
    return markPermanent(new StoreEncodeError('the value is nested too deeply to encode: JSON.stringify overflowed the stack (it handles about 4,000 levels); flatten it, or use a KeyedStore for many entries', withCause))
  }
  if (err instanceof RangeError && /string length/i.test(message)) {
    return markPermanent(new StoreEncodeError('the value is too large to encode: its JSON text would be longer than the longest string V8 can hold (about 512 MiB)', withCause))
  }
  // A toJSON() or a getter threw: writing the same value again would throw again.
  return markPermanent(new StoreEncodeError(`JSON.stringify threw: ${message}`, withCause))
}
