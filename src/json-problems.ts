// What JSON.stringify writes is not always the value: it writes a Map as {}, NaN as null, leaves
// functions out, and throws on a BigInt or a cycle without saying where. This module finds the
// first such place and says what it is, as plain data: it is shared by the main thread (which
// turns a problem into an error in src/json-fidelity.ts) and the writer worker (which checks the
// copy a schema codec encodes, and sends the problem back). Pure: no state, no errors of ours.
//
// The walk is iterative (no stack overflow however deep the value) and costs O(objects):
// - after a successful JSON.stringify of the same value the value is known to be acyclic, so the
//   walk needs no identity set; it visits each object once per place JSON wrote it, which is
//   bounded by the text's length (a getter that builds new objects on each read cannot make it loop);
// - otherwise it first walks the same way with a visit budget, and only a value that exhausts the
//   budget (a cycle, or heavy sharing) is walked again with a Map of the objects seen, which finds
//   the cycle and visits a shared object once.

/** What JSON.stringify would do wrong with a value, and so why it is refused. */
type FidelityKind =
  /** JSON cannot encode it at all: a cycle. */
  | 'cycle'
  /** JSON.stringify throws on it (a BigInt). */
  | 'unencodable'
  /** JSON would change it silently (Map, Set, NaN, typed arrays...): refused unless `lossy`. */
  | 'lossy'
  /**
   * JSON would leave it out silently (a function, a symbol): refused unless `lossy`, with
   * ERR_STORE_DATA_CLONE, the code such values have always had (a clone cannot copy them either).
   */
  | 'dropped'
  /** A structured clone cannot copy it (a function, a symbol, a WeakMap...), so it cannot reach a worker. */
  | 'clone'
  /** A structured clone drops its prototype, so its toJSON() would not run in the worker. */
  | 'toJSON'

/** Where in the value a problem was found, what it was, and how to fix it: plain data, so it crosses from a worker. */
export interface FidelityProblem {
  /** JSONPath-like location, `$` for the root. */
  readonly at: string
  /** What was found there ("a Map", "a cycle"). */
  readonly found: string
  /** Why it is refused. */
  readonly kind: FidelityKind
  /** What JSON would write instead, and what to do about it. */
  readonly fix: string
}

/** How strictly a value is checked. */
export interface JsonCheckOptions {
  /** Accept what JSON silently drops or changes (Map and Set as `{}`, NaN as `null`, functions left out). @defaultValue false */
  readonly lossy?: boolean | undefined
  /**
   * The value reaches JSON.stringify through a structured clone (in a worker): a toJSON() other
   * than Date's would not run, and a function or symbol cannot be cloned. @defaultValue false
   */
  readonly cloned?: boolean | undefined
}

// A class, so a user object shaped like a problem is never mistaken for one.
class Hit {
  constructor (readonly kind: FidelityKind, readonly found: string, readonly fix: string) {}
}

const { getPrototypeOf, keys: ownKeys } = Object
const objectProto = Object.prototype
const arrayProto = Array.prototype
const EXCEEDED = Symbol('budget exceeded')
const DEEP = Symbol('too deep to recurse')
const ON_PATH = 1
const DONE = 2
/** Visits a walk without an identity set may make before it assumes a cycle or heavy sharing. */
const DEFAULT_BUDGET = 65_536
/** Path segments kept at each end of a very deep path in a message. */
const PATH_ENDS = 100

const CYCLE = new Hit('cycle', 'a cycle', 'JSON cannot encode it')
const BIGINT = new Hit('unencodable', 'a BigInt', 'JSON.stringify cannot encode it; convert it with String(n) (or Number(n) when it fits)')
const FUNCTION = new Hit('dropped', 'a function', 'JSON would leave it out (null in an array), so the file would not hold your data; remove it')
const SYMBOL = new Hit('dropped', 'a symbol', 'JSON would leave it out (null in an array), so the file would not hold your data; convert it to a string first')
const LEAF = 0

function lossy (found: string, writes: string, fix: string): Hit {
  return new Hit('lossy', found, `JSON would write ${writes}, so the file would not hold your data; ${fix}`)
}

function uncloneable (found: string, fix: string): Hit {
  return new Hit('clone', found, `a structured clone cannot copy it to the worker; ${fix}`)
}

/** The class name an object is given by in messages. */
export function nameOf (value: object): string {
  const name: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' ? name : 'an object'
}

// The built-ins whose state lives in internal slots, so JSON sees no (or the wrong) properties.
// Only reached for objects that are neither plain nor arrays, so plain data pays nothing for it.
function builtinHit (value: object, options: JsonCheckOptions): Hit | typeof LEAF | undefined {
  if (value instanceof Map) return lossy('a Map', '{}', 'convert it with Object.fromEntries(map) (or [...map] for keys that are not strings)')
  if (value instanceof Set) return lossy('a Set', '{}', 'convert it with [...set]')
  if (ArrayBuffer.isView(value)) return lossy(`a ${nameOf(value)}`, 'an object of indexes ({"0":...}), not an array', 'convert it with Array.from(bytes), or to base64 with Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(\'base64\')')
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return lossy(`an ${nameOf(value)}`, '{}', 'convert it with Array.from(new Uint8Array(buffer))')
  if (value instanceof RegExp) return lossy('a RegExp', '{}', 'save regexp.source and regexp.flags')
  if (value instanceof Error) return lossy(`an ${nameOf(value)}`, '{} (message and stack are not enumerable)', 'save { name: err.name, message: err.message }')
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef || value instanceof Promise) {
    return options.cloned === true ? uncloneable(`a ${nameOf(value)}`, 'leave it out of the saved value') : lossy(`a ${nameOf(value)}`, '{}', 'leave it out of the saved value')
  }
  // Boxed primitives are written as their primitive by JSON.stringify and survive a clone.
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return LEAF
  return undefined
}

/** Classifies one slot: a problem, an object to descend into, or nothing to do (LEAF or undefined). */
function inspect (value: unknown, options: JsonCheckOptions): Hit | object | typeof LEAF | undefined {
  switch (typeof value) {
    case 'object': {
      if (value === null) return undefined
      const proto: unknown = getPrototypeOf(value)
      if (proto === objectProto || proto === arrayProto) {
        // An own toJSON on plain data is rare but legal; JSON.stringify calls it.
        if (typeof (value as { toJSON?: unknown }).toJSON !== 'function') return value
      } else if (proto === null) {
        return value
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        // Without a clone, JSON.stringify called it on this thread: its result is what was written.
        if (options.cloned !== true || value instanceof Date) return LEAF
        return new Hit('toJSON', `an instance of ${nameOf(value)} with a toJSON() method`,
          'a worker receives a structured clone, which drops prototypes, so toJSON() would not run and the file would differ from JSON.stringify. Convert it to plain data first (call toJSON() yourself), or use codecs.module() with an encoder that maps it')
      }
      if (Array.isArray(value)) return value
      const builtin = builtinHit(value, options)
      if (builtin === LEAF) return LEAF
      if (builtin !== undefined) return builtin.kind === 'lossy' && options.lossy === true ? LEAF : builtin
      return value
    }
    case 'number':
      return Number.isFinite(value) || options.lossy === true ? undefined : lossy(String(value), 'null', 'save it as a string or as null yourself')
    case 'bigint':
      return BIGINT
    case 'function':
      if (options.cloned === true) return uncloneable('a function', 'remove it, or convert it to plain data first')
      return options.lossy === true ? undefined : FUNCTION
    case 'symbol':
      if (options.cloned === true) return uncloneable('a symbol', 'convert it to a string first')
      return options.lossy === true ? undefined : SYMBOL
    default:
      return undefined
  }
}

function formatKey (key: string | number): string {
  return typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

function formatPath (keys: ReadonlyArray<string | number>): string {
  let out = '$'
  if (keys.length > 2 * PATH_ENDS) {
    for (const key of keys.slice(0, PATH_ENDS)) out += formatKey(key)
    out += `…(${keys.length - 2 * PATH_ENDS} levels)…`
    for (const key of keys.slice(-PATH_ENDS)) out += formatKey(key)
    return out
  }
  for (const key of keys) out += formatKey(key)
  return out
}

/** Depth up to which the fast walk recurses; a deeper value is walked again iteratively. */
const FAST_DEPTH = 1000

interface Found { readonly hit: Hit, readonly keys: Array<string | number> }

/**
 * The common case, fast: a recursive for...in walk that allocates nothing unless it finds a
 * problem. It gives up past FAST_DEPTH levels (DEEP) or `budget` objects (EXCEEDED), so it can
 * neither overflow the stack nor run on through a cycle or heavy sharing.
 */
function fastWalk (root: object, options: JsonCheckOptions, budget: number): FidelityProblem | undefined | typeof EXCEEDED | typeof DEEP {
  let visits = 0
  const slot = (item: unknown, depth: number): Found | undefined | typeof EXCEEDED | typeof DEEP => {
    const found = inspect(item, options)
    if (found === undefined || found === LEAF) return undefined
    if (found instanceof Hit) return { hit: found, keys: [] }
    return visit(found, depth + 1)
  }
  const visit = (value: object, depth: number): Found | undefined | typeof EXCEEDED | typeof DEEP => {
    if (++visits > budget) return EXCEEDED
    if (depth > FAST_DEPTH) return DEEP
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        // Strings, booleans and finite numbers are the bulk of any state: decided inline.
        if (typeof item === 'string' || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item))) continue
        const problem = slot(item, depth)
        if (problem === EXCEEDED || problem === DEEP) return problem
        if (problem !== undefined) { problem.keys.unshift(i); return problem }
      }
      return undefined
    }
    // for...in walks V8's enum cache without allocating a key array; for an object that is not
    // plain, inherited enumerable keys are skipped, as JSON.stringify skips them.
    const proto: unknown = getPrototypeOf(value)
    const plain = proto === objectProto || proto === null
    for (const key in value) {
      if (!plain && !Object.hasOwn(value, key)) continue
      const item: unknown = (value as Record<string, unknown>)[key]
      if (typeof item === 'string' || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item))) continue
      const problem = slot(item, depth)
      if (problem === EXCEEDED || problem === DEEP) return problem
      if (problem !== undefined) { problem.keys.unshift(key); return problem }
    }
    return undefined
  }
  const problem = visit(root, 0)
  if (problem === undefined || problem === EXCEEDED || problem === DEEP) return problem
  return problemAt(formatPath(problem.keys), problem.hit)
}

// The lean walk: a first pass that only answers "certainly faithful" for the shapes nearly every
// state is made of, visiting each slot once with no path kept, no key list and nothing allocated.
// Anything else (a class instance, a Map, NaN, a function, a depth or an object count past its
// bound) answers false, and the classifying walks below decide and name the place. On the bench
// state it costs 0.13-0.15x JSON.stringify of the same value, where the classifying walk alone
// cost 0.16-0.20x; the gain is that most saves never build a path or a problem record.

/** Objects the lean walk may still visit; an object, so a getter that saves again cannot reset it. */
interface LeanBudget { left: number }

// A primitive JSON writes as itself: strings, booleans, finite numbers, null and undefined (left
// out or null, as JSON.stringify does and the full walk accepts). NaN - NaN is NaN, Infinity - Infinity too.
function leanPrimitive (item: unknown): boolean {
  switch (typeof item) {
    case 'string': case 'boolean': case 'undefined': return true
    case 'number': return item - item === 0
    default: return false
  }
}

function leanChild (item: object, cloned: boolean, depth: number, budget: LeanBudget): boolean {
  const proto: unknown = getPrototypeOf(item)
  if (proto === objectProto || proto === arrayProto) {
    // An own toJSON: JSON.stringify wrote its result (not walked, as the full walk does); a clone cannot call it.
    if (typeof (item as { toJSON?: unknown }).toJSON === 'function') return !cloned
    return leanObject(item, proto === arrayProto, cloned, depth + 1, budget)
  }
  if (proto === null) return leanObject(item, false, cloned, depth + 1, budget)
  // A Date (or, on this thread, any object with a toJSON): written as toJSON() returns. The rest
  // (class instances, Map, Set, boxed primitives...) is for the full walk to classify.
  return typeof (item as { toJSON?: unknown }).toJSON === 'function' && (!cloned || item instanceof Date)
}

function leanObject (value: object, array: boolean, cloned: boolean, depth: number, budget: LeanBudget): boolean {
  if (--budget.left < 0 || depth > FAST_DEPTH) return false
  if (array) {
    const list = value as unknown[]
    for (let i = 0; i < list.length; i++) {
      const item: unknown = list[i]
      if (typeof item === 'object') {
        if (item !== null && !leanChild(item, cloned, depth, budget)) return false
      } else if (!leanPrimitive(item)) {
        return false
      }
    }
    return true
  }
  // Plain or null-prototype only, so for...in sees own keys (and what JSON.stringify sees too).
  for (const key in value) {
    const item: unknown = (value as Record<string, unknown>)[key]
    if (typeof item === 'object') {
      if (item !== null && !leanChild(item, cloned, depth, budget)) return false
    } else if (!leanPrimitive(item)) {
      return false
    }
  }
  return true
}

/**
 * True only when `root` is certainly held faithfully by JSON (the full walk would find nothing);
 * false means "walk it properly", not "refuse". At most `budget` objects and FAST_DEPTH levels.
 */
function certainlyPlain (root: unknown, cloned: boolean, budget: number): boolean {
  if (typeof root !== 'object') return leanPrimitive(root)
  return root === null || leanChild(root, cloned, -1, { left: budget })
}

/**
 * One depth-first walk, iterative. With `seen`, each object is visited once and a reference to an
 * object still on the path is a cycle; without it, the walk gives up (EXCEEDED) after `budget`
 * objects, which only a cycle, heavy sharing or a value larger than the budget reaches.
 */
function walk (root: unknown, options: JsonCheckOptions, seen: Map<object, number> | undefined, budget: number): FidelityProblem | undefined | typeof EXCEEDED {
  const first = inspect(root, options)
  if (first === undefined || first === LEAF) return undefined
  if (first instanceof Hit) return problemAt('$', first)
  const holders: object[] = [first]
  const keyLists: Array<string[] | undefined> = [Array.isArray(first) ? undefined : ownKeys(first)]
  const positions: number[] = [0]
  seen?.set(first, ON_PATH)
  let visits = 1
  let top = 0
  while (top >= 0) {
    const holder = holders[top] as Record<string | number, unknown>
    const keys = keyLists[top]
    const position = positions[top] as number
    const length = keys === undefined ? (holder as unknown as unknown[]).length : keys.length
    if (position >= length) {
      seen?.set(holder, DONE)
      top--
      continue
    }
    positions[top] = position + 1
    const key = keys === undefined ? position : keys[position] as string
    const found = inspect(holder[key], options)
    if (found === undefined || found === LEAF) continue
    let hit: Hit | undefined
    if (found instanceof Hit) {
      hit = found
    } else if (seen !== undefined) {
      const state = seen.get(found)
      if (state === DONE) continue
      if (state === ON_PATH) hit = CYCLE
      else seen.set(found, ON_PATH)
    } else if (++visits > budget) {
      return EXCEEDED
    }
    if (hit !== undefined) {
      const path: Array<string | number> = []
      for (let i = 0; i < top; i++) path.push(pathKey(keyLists[i], positions[i] as number))
      path.push(key)
      return problemAt(formatPath(path), hit)
    }
    top++
    holders[top] = found
    keyLists[top] = Array.isArray(found) ? undefined : ownKeys(found)
    positions[top] = 0
  }
  return undefined
}

function problemAt (at: string, hit: Hit): FidelityProblem {
  return { at, found: hit.found, kind: hit.kind, fix: hit.fix }
}

// A frame's current key: the one before its next position.
function pathKey (keys: string[] | undefined, position: number): string | number {
  return keys === undefined ? position - 1 : keys[position - 1] as string
}

/** The first problem, found with an identity set from the start: for a value already known to be odd (JSON.stringify threw on it). */
export function findJsonProblemExact (root: unknown, options: JsonCheckOptions): FidelityProblem | undefined {
  const problem = walk(root, options, new Map(), Infinity)
  return problem === EXCEEDED ? undefined : problem
}

/**
 * The first place where JSON would not faithfully hold `root` (in depth-first order), or undefined.
 * Costs O(objects in the value) for every shape: cycles, shared references, deep chains, wide objects.
 */
function findJsonFidelityProblem (root: unknown, options: JsonCheckOptions = {}, budget = DEFAULT_BUDGET): FidelityProblem | undefined {
  const problem = cheap(root, options, budget)
  return problem === EXCEEDED ? findJsonProblemExact(root, options) : problem
}

// The fast walk, or, past its depth, the iterative one, both bounded by `budget` objects.
function cheap (root: unknown, options: JsonCheckOptions, budget: number): FidelityProblem | undefined | typeof EXCEEDED {
  const first = inspect(root, options)
  if (first === undefined || first === LEAF) return undefined
  if (first instanceof Hit) return problemAt('$', first)
  const problem = fastWalk(first, options, budget)
  // Only depth sends it to the iterative walk: a budget spent is a budget spent.
  return problem === DEEP ? walk(root, options, undefined, budget) : problem
}

/**
 * The first place (in depth-first order) where JSON would not faithfully hold `root`, or
 * undefined. `budget` bounds the walks without an identity set (a value that exhausts it is walked
 * again with one). Reads the value: what a getter or a Proxy trap throws is thrown.
 */
export function findJsonProblem (root: unknown, options: JsonCheckOptions, budget = DEFAULT_BUDGET): FidelityProblem | undefined {
  return certainlyPlain(root, options.cloned === true, budget) ? undefined : findJsonFidelityProblem(root, options, budget)
}

// A v8.serialize copy (what a schema codec's worker encodes) keeps Map, Set, Date, RegExp, typed
// arrays, errors, boxed primitives, NaN and BigInt as they are, so the check finds the same
// problems at the same paths in the copy as in the value. What it drops is prototypes: a class
// instance arrives as a plain object of its own fields, and a subclass of a built-in as the
// built-in. The check reads a prototype in two places only: a toJSON() the worker cannot call, and
// a built-in subclass's name in a message. copyShowsEverything() looks for just those, so the main
// thread pays a walk over the objects and nothing per primitive; a value it does not clear is
// checked on the main thread as well.

/** The built-in prototypes a copy keeps: an object with one of these arrives as what it was. */
const KEPT_PROTOTYPES: ReadonlySet<unknown> = new Set([
  Date, Map, Set, RegExp, ArrayBuffer, DataView, Number, String, Boolean,
  Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array
].map((builtin) => builtin.prototype))
const toTag = Object.prototype.toString

function showsChild (item: object, depth: number, budget: LeanBudget): boolean {
  const proto: unknown = getPrototypeOf(item)
  // A function in a plain object (an own toJSON) never gets here: the copy refused it.
  if (proto === objectProto || proto === null) return showsObject(item, true, depth + 1, budget)
  if (proto === arrayProto) return showsArray(item as unknown[], depth + 1, budget)
  if (KEPT_PROTOTYPES.has(proto)) return true
  // A Date subclass arrives as a Date, which the check accepts as it accepts the subclass.
  if (typeof (item as { toJSON?: unknown }).toJSON === 'function') return item instanceof Date
  // A subclass of a built-in (or of Array) is left to the main thread; a plain class instance
  // arrives as its own enumerable fields, which is what the check walks in it.
  if (toTag.call(item) !== '[object Object]') return false
  return showsObject(item, false, depth + 1, budget)
}

function showsArray (list: readonly unknown[], depth: number, budget: LeanBudget): boolean {
  if (--budget.left < 0 || depth > FAST_DEPTH) return false
  for (let i = 0; i < list.length; i++) {
    const item = list[i]
    if (typeof item === 'object' && item !== null && !showsChild(item, depth, budget)) return false
  }
  return true
}

// `plain`: the object's prototype is Object.prototype or null, so for...in sees own keys only.
function showsObject (value: object, plain: boolean, depth: number, budget: LeanBudget): boolean {
  if (--budget.left < 0 || depth > FAST_DEPTH) return false
  for (const key in value) {
    // Inherited enumerable keys are not copied, and the check skips them too.
    if (!plain && !Object.hasOwn(value, key)) continue
    const item: unknown = (value as Record<string, unknown>)[key]
    if (typeof item === 'object' && item !== null && !showsChild(item, depth, budget)) return false
  }
  return true
}

/**
 * True when the JSON check run on a `v8.serialize` copy of `root` finds exactly what it would find
 * in `root`: no object in it has a prototype the copy drops that the check reads (a toJSON() other
 * than Date's, a subclass of a built-in). False means "check `root` itself", not "refuse". Reads
 * the value (getters run); at most `budget` objects and FAST_DEPTH levels, else false.
 */
export function copyShowsEverything (root: unknown, budget: number): boolean {
  return typeof root !== 'object' || root === null || showsChild(root, -1, { left: budget })
}
