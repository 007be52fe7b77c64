import type { TransferListItem } from 'node:worker_threads'
import { serialize } from 'node:v8'
import { baseOf } from './codec-frames.js'
import { type StoreErrorContext, StoreEncodeError } from './errors.js'
import { assertJsonFaithful, stringifyFaithful } from './json-fidelity.js'
import { copyShowsEverything, copyWritesSameJson } from './json-problems.js'
import type { BaseCodecSpec, CodecSpec, JsonCheck, WriteForm } from './protocol.js'
import { isStackOverflow, markPermanent, notCopyable, tooDeepToCopy } from './write-outcome.js'

// A Piscina task is cloned when a worker takes it, which may be much later than the call when the
// pool is starting or busy: a value sent as is would be written as it is *then*, after the check.
// So everything is checked and turned into a flat copy in one synchronous step at write start,
// and only that copy (a string, or a buffer that is transferred) is left for the worker.

/** What a write sends to the worker: the copy, its form, the buffers to transfer, and the check the worker runs on the copy. */
export interface Handoff {
  readonly value: unknown
  readonly form: WriteForm
  readonly transfer: TransferListItem[] | undefined
  readonly check: JsonCheck | undefined
}

/** A buffer of our own (not a view into a larger or shared one) can be moved rather than copied. */
function ownsWholeBuffer (bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
}

// A getter that throws on this second read is left for the check here, which says so.
function showsEverything (value: unknown, budget: number): boolean {
  try {
    return copyShowsEverything(value, budget)
  } catch {
    return false
  }
}

// Under codecs.schema() the JSON check judges the copy, in the worker: v8.serialize keeps every
// value the check refuses as it is (a Map stays a Map, NaN stays NaN), so the check finds the same
// problems at the same paths there. This thread pays for the copy and for a walk over the value's
// objects that looks only at prototypes, the one thing the copy drops: a value with a prototype
// the check reads (a toJSON(), a built-in's subclass) is checked here too, as is a value the copy
// refuses, to name the place.
function serialized (data: unknown, value: unknown, context: StoreErrorContext, json: { readonly lossy?: boolean | undefined } | undefined): Handoff {
  let bytes: Uint8Array
  try {
    bytes = serialize(data)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const withCause = { ...context, cause: err }
    if (isStackOverflow(err)) throw tooDeepToCopy(withCause)
    if (json !== undefined) assertJsonFaithful(value, withCause, '', json)
    throw notCopyable(message, withCause)
  }
  let check: JsonCheck | undefined
  if (json !== undefined) {
    // The copy's size bounds the walks, as it bounds what was copied.
    const budget = bytes.byteLength
    if (!showsEverything(value, budget)) assertJsonFaithful(value, context, '', { lossy: json.lossy, budget })
    // Checked in the worker even then: what is written is the copy, whatever a getter gives now.
    check = { lossy: json.lossy, budget, member: Object.is(data, value) ? undefined : 'data' }
  }
  if (!ownsWholeBuffer(bytes)) bytes = new Uint8Array(bytes)
  return { value: bytes, form: 'serialized', transfer: [bytes.buffer as ArrayBuffer], check }
}

type JsonSpec = Extract<BaseCodecSpec, { kind: 'json' }>

/** The smallest value (by its last save's size) that codecs.json() copies to the worker rather than stringifies here. */
export const JSON_COPY_MIN_BYTES = 64 * 1024
/** The largest value (by its last save's size) that codecs.json() copies to the worker rather than stringifies here. */
export const JSON_COPY_MAX_BYTES = 1024 * 1024
/** Saves that stringify here, after a value the copy could not write as JSON.stringify does, before the copy is tried again. */
const SKIPS_AFTER_REFUSAL = 16

/** Where a codecs.json() codec's last value went: its size, and the saves left before a refused copy is tried again. */
interface JsonRoute {
  bytes: number
  skips: number
}
const routes = new WeakMap<JsonSpec, JsonRoute>()

// Under codecs.json() a plain value of 64 KB to 1 MB is cheaper for this thread as a copy than as
// text: v8.serialize costs less than JSON.stringify there, and its buffer is moved to the worker,
// where a text would be flattened and copied again. The worker pays for it: it rebuilds the value
// and stringifies it, about 3.5x JSON.stringify, and the round trip doubles. At 150 KB that trade
// takes 0.3 ms off this thread for 0.9 ms of the worker's. Below 64 KB this thread saves nothing
// measurable and each write waits longer; past a megabyte it saves 5-15% while the worker spends
// three stringifies more (150 ms at 15 MB). So those are stringified here, as is a value whose copy
// JSON.stringify would read differently (copyWritesSameJson: a toJSON() of a class, a Map's own
// fields, a function under { lossy: true }). The route follows the last save's size, since this
// one's is known only once one of the two has been paid for; a codec's first save is stringified.
function jsonCopy (spec: JsonSpec, data: unknown, value: unknown, route: JsonRoute): Handoff | undefined {
  let bytes: Uint8Array
  try {
    bytes = serialize(data)
  } catch {
    return undefined // JSON.stringify here says what is wrong, or writes it under { lossy: true }
  }
  const budget = bytes.byteLength
  route.bytes = budget
  let same: boolean
  try {
    same = copyWritesSameJson(value, budget)
  } catch {
    same = false // a getter threw on this second read: the main thread's check says so
  }
  if (!same) return undefined
  if (!ownsWholeBuffer(bytes)) bytes = new Uint8Array(bytes)
  const check: JsonCheck = { lossy: spec.lossy, budget, member: Object.is(data, value) ? undefined : 'data' }
  return { value: bytes, form: 'serialized', transfer: [bytes.buffer as ArrayBuffer], check }
}

function json (spec: JsonSpec, data: unknown, value: unknown, context: StoreErrorContext): Handoff {
  let route = routes.get(spec)
  if (route === undefined) routes.set(spec, route = { bytes: 0, skips: 0 })
  if (route.skips > 0) {
    route.skips--
  } else if (route.bytes >= JSON_COPY_MIN_BYTES && route.bytes <= JSON_COPY_MAX_BYTES && value !== undefined) {
    const copied = jsonCopy(spec, data, value, route)
    if (copied !== undefined) return copied
    route.skips = SKIPS_AFTER_REFUSAL
  }
  const text = stringifyFaithful(data, value, spec.space, context, { lossy: spec.lossy })
  route.bytes = text.length
  return { value: text, form: 'encoded', transfer: undefined, check: undefined }
}

function raw (data: unknown, context: StoreErrorContext): Handoff {
  if (typeof data === 'string') return { value: data, form: 'encoded', transfer: undefined, check: undefined }
  if (data instanceof Uint8Array) {
    // A whole buffer is moved (it is detached in the caller's thread); a view is copied now.
    const bytes = ownsWholeBuffer(data) ? data : new Uint8Array(data)
    return { value: bytes, form: 'encoded', transfer: [bytes.buffer as ArrayBuffer], check: undefined }
  }
  const what = data === null ? 'null' : typeof data === 'object' ? `an object (${(data as object).constructor?.name ?? 'no prototype'})` : `a ${typeof data}`
  throw markPermanent(new StoreEncodeError(`codecs.raw() writes a string or a Uint8Array, got ${what}`, context))
}

/**
 * Checks `data` for `spec` and copies it for the worker, at once. `value` is the user's part of
 * `data` (which may be a versioning envelope around it), walked for problems and named in paths.
 * Schema, module and mid-sized plain JSON values are copied with `v8.serialize` and encoded in the
 * worker, where a JSON or schema value's copy is checked (the returned `check`) unless it had to
 * be checked here; other JSON is encoded here (the text is the copy); raw bytes are moved or
 * copied. Compression and
 * encryption wrappers always run in the worker, on what this sends: the main thread's cost is that
 * of the codec they wrap.
 * Throws a permanent StoreError when the value cannot be written as it is.
 */
export function handOff (codec: CodecSpec, data: unknown, value: unknown, context: StoreErrorContext): Handoff {
  const spec = baseOf(codec)
  switch (spec.kind) {
    case 'json':
      return json(spec, data, value, context)
    case 'schema':
      return serialized(data, value, context, { lossy: spec.lossy })
    case 'module':
      return serialized(data, value, context, undefined)
    case 'raw':
      return raw(data, context)
    default:
      throw new Error(`unknown codec kind ${JSON.stringify((spec as { kind: unknown }).kind)}: this should not happen`)
  }
}
