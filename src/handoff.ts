import type { TransferListItem } from 'node:worker_threads'
import { serialize } from 'node:v8'
import { baseOf } from './codec-frames.js'
import { type StoreErrorContext, StoreEncodeError } from './errors.js'
import { assertJsonFaithful, stringifyFaithful } from './json-fidelity.js'
import { copyShowsEverything } from './json-problems.js'
import type { CodecSpec, JsonCheck, WriteForm } from './protocol.js'
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
 * JSON is encoded here (the text is the copy); schema and module values are copied with
 * `v8.serialize` and encoded in the worker, where a schema value's copy is checked (the returned
 * `check`) unless it had to be checked here; raw bytes are moved or copied. Compression and
 * encryption wrappers always run in the worker, on what this sends: the main thread's cost is that
 * of the codec they wrap.
 * Throws a permanent StoreError when the value cannot be written as it is.
 */
export function handOff (codec: CodecSpec, data: unknown, value: unknown, context: StoreErrorContext): Handoff {
  const spec = baseOf(codec)
  switch (spec.kind) {
    case 'json':
      return { value: stringifyFaithful(data, value, spec.space, context, { lossy: spec.lossy }), form: 'encoded', transfer: undefined, check: undefined }
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
