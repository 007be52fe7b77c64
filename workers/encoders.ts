import { createRequire } from 'node:module'
import { baseOf, type SealPurpose, unwrapSync, wrapBytes } from '../src/codec-frames.js'
import { codecExport, decodeBytes } from '../src/codec-runtime.js'
import type { CodecSpec } from '../src/protocol.js'

// fast-json-stringify is CommonJS; createRequire keeps its types and avoids ESM interop quirks.
// Loaded on first use: it pulls in ajv, which costs a cold worker about 40% of its start-up CPU.
const require = createRequire(import.meta.url)
let fastJson: typeof import('fast-json-stringify').default | undefined

type Encode = (value: unknown) => unknown

// Compiling a schema costs milliseconds; each worker compiles it once and keeps it for its life.
const compiled = new Map<string, Encode>()
// A module codec is imported once per worker; the promise is cached so concurrent loads share it.
const modules = new Map<string, Promise<Record<string, unknown>>>()

/** Thrown when an encoder's output is not something we can write; the message says what it was. */
export class EncodeResultError extends TypeError {}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`
  return `a ${typeof value}`
}

function checkOutput (output: unknown, who: string): string | Uint8Array {
  if (typeof output === 'string' || output instanceof Uint8Array) return output
  throw new EncodeResultError(`${who} returned ${describe(output)}; it must return a string or a Uint8Array`)
}

/** Bytes the main thread already encoded: checked, never re-encoded. */
export function encoded (value: unknown): string | Uint8Array {
  return checkOutput(value, 'the main thread')
}

async function loadModule (url: string): Promise<Record<string, unknown>> {
  let loading = modules.get(url)
  if (loading === undefined) {
    loading = import(url) as Promise<Record<string, unknown>>
    modules.set(url, loading)
    // A module that failed to load must not be cached forever: let a later write retry.
    loading.catch(() => modules.delete(url))
  }
  return await loading
}

/** Encodes `value` with the codec described by `spec` and wraps the bytes as it says (compress, encrypt), inside the worker. */
export async function encode (spec: CodecSpec, value: unknown, purpose: SealPurpose = { kind: 'file' }): Promise<string | Uint8Array> {
  return wrapBytes(spec, await encodeBase(spec, value), purpose)
}

/** Encodes `value` with the base codec of `spec` (the one inside any wrappers), inside the worker. */
export async function encodeBase (codec: CodecSpec, value: unknown): Promise<string | Uint8Array> {
  const spec = baseOf(codec)
  switch (spec.kind) {
    case 'json': {
      const text: unknown = JSON.stringify(value, null, spec.space)
      // JSON.stringify gives undefined for undefined, functions and symbols: nothing we could write.
      if (text === undefined) throw new EncodeResultError(`JSON.stringify returned undefined for ${describe(value)}; there is nothing to write`)
      return text as string
    }
    case 'schema': {
      let serialize = compiled.get(spec.id)
      if (serialize === undefined) {
        fastJson ??= require('fast-json-stringify') as typeof import('fast-json-stringify').default
        serialize = fastJson(spec.schema, {
          largeArrayMechanism: spec.largeArrayMechanism,
          largeArraySize: spec.largeArraySize
        }) as Encode
        compiled.set(spec.id, serialize)
      }
      return checkOutput(serialize(value), 'the fast-json-stringify serializer')
    }
    case 'module': {
      const fn = codecExport(await loadModule(spec.url), spec.url, spec.encode) as Encode
      return checkOutput(await fn(value), `encoder ${JSON.stringify(spec.encode)} of ${spec.url}`)
    }
    case 'raw':
      return checkOutput(value, 'codecs.raw()')
    default:
      throw new Error(`unknown codec kind ${JSON.stringify((spec as { kind: unknown }).kind)}: this should not happen`)
  }
}

/**
 * Decodes file bytes inside the worker (for the keyed writer's mirror); the result is plain data.
 * Decompressing and decrypting run here, synchronously, as the writes do: libuv's four threads
 * are left to the main thread's I/O.
 */
export async function decode (spec: CodecSpec, bytes: Uint8Array): Promise<unknown> {
  return await decodeBytes(spec, bytes, loadModule, unwrapSync)
}
