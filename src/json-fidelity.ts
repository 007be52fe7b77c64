import { type StoreErrorContext, StoreDataCloneError, StoreEncodeError } from './errors.js'
import { markPermanent } from './write-outcome.js'

// A worker receives a structured clone, not the value. For JSON that changes the output in exactly
// one way: an object whose class defines toJSON() arrives as a plain object, so its toJSON() never
// runs. Everything else matches what JSON.stringify would do on the original: Date survives as a
// Date (same toJSON), Map and Set survive and stringify as {}, own enumerable properties are the
// same, functions and symbols make postMessage fail loudly. This walk finds the one silent case.

/** Where in the value a problem was found, and what it was. */
export interface FidelityProblem {
  /** JSONPath-like location, `$` for the root. */
  readonly at: string
  /** What was found there. */
  readonly found: string
  /** `cycle`: JSON cannot encode it at all; `toJSON`: the worker would silently skip a toJSON(). */
  readonly kind: 'cycle' | 'toJSON'
}

const { getPrototypeOf } = Object
const objectProto = Object.prototype
const arrayProto = Array.prototype

function formatPath (keys: ReadonlyArray<string | number>): string {
  let out = '$'
  for (const key of keys) {
    out += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
  }
  return out
}

interface Found { readonly keys: Array<string | number>, readonly found: string, readonly kind: 'cycle' | 'toJSON' }

// Deeper than this, the walk stops looking: the value is almost surely a cycle, and the worker's
// JSON.stringify reports cycles itself. Tracking every ancestor would cost a Set operation per object.
const MAX_DEPTH = 2000

/**
 * Returns the first place where JSON.stringify in a worker would write something other than
 * JSON.stringify on this thread, or a cycle; undefined when the value crosses faithfully. It only
 * reads prototypes and own keys (no strings are built), so it costs far less than JSON.stringify.
 */
export function findJsonFidelityProblem (root: unknown): FidelityProblem | undefined {
  // The path is built only on the way out of a failure, so the common case allocates nothing.
  const ancestors: object[] = []
  const visit = (value: object, depth: number): Found | undefined => {
    const proto: unknown = getPrototypeOf(value)
    if (proto === arrayProto) {
      const array = value as unknown[]
      for (let i = 0; i < array.length; i++) {
        const item = array[i]
        if (typeof item !== 'object' || item === null) continue
        const problem = descend(item, depth)
        if (problem !== undefined) { problem.keys.unshift(i); return problem }
      }
      return undefined
    }
    if (proto !== objectProto && proto !== null) {
      // Date keeps its prototype through a clone; Map, Set, typed arrays, boxed primitives have no
      // toJSON and stringify the same on both sides. A class with toJSON is the silent difference.
      if (proto === Date.prototype) return undefined
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        const name = (value as object).constructor?.name ?? 'an object'
        return { keys: [], found: `an instance of ${name} with a toJSON() method`, kind: 'toJSON' }
      }
      if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) return undefined
    }
    // for...in over a plain object walks V8's enum cache without allocating a key array; for any
    // other prototype, inherited enumerable keys are skipped, as JSON.stringify skips them.
    const plain = proto === objectProto || proto === null
    for (const key in value) {
      if (!plain && !Object.hasOwn(value, key)) continue
      const item = (value as Record<string, unknown>)[key]
      if (typeof item !== 'object' || item === null) continue
      const problem = descend(item, depth)
      if (problem !== undefined) { problem.keys.unshift(key); return problem }
    }
    return undefined
  }
  const descend = (value: object, depth: number): Found | undefined => {
    // Cheap cycle check for the shallow shapes stores hold; past MAX_DEPTH the worker reports it.
    if (depth < 64) {
      if (ancestors.includes(value)) return { keys: [], found: 'a cycle', kind: 'cycle' }
    } else if (depth >= MAX_DEPTH) {
      return undefined
    }
    ancestors.push(value)
    const problem = visit(value, depth + 1)
    ancestors.pop()
    return problem
  }
  if (typeof root !== 'object' || root === null) return undefined
  const problem = descend(root, 0)
  return problem === undefined ? undefined : { at: formatPath(problem.keys), found: problem.found, kind: problem.kind }
}

/**
 * Throws what a save of `value` under a JSON codec must reject with: ERR_STORE_ENCODE for a cycle,
 * ERR_STORE_DATA_CLONE for a toJSON() the worker could not call. Both are permanent failures.
 */
export function assertJsonFaithful (value: unknown, context: StoreErrorContext, at = ''): void {
  const problem = findJsonFidelityProblem(value)
  if (problem === undefined) return
  const where = at + problem.at.slice(1)
  if (problem.kind === 'cycle') {
    throw markPermanent(new StoreEncodeError(`the value has a cycle at $${where}; JSON cannot encode it`, context))
  }
  throw markPermanent(new StoreDataCloneError(
    `${problem.found} at $${where}: a worker receives a structured clone, which drops prototypes, so toJSON() would not run and the file would differ from JSON.stringify. Convert it to plain data first (call toJSON() yourself), or use codecs.module() with an encoder that maps it`,
    context))
}
