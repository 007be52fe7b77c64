import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { decodeBytes, type ModuleImporter } from './codec-runtime.js'
import { StoreInvalidArgumentError } from './errors.js'
import type { CodecSpec } from './protocol.js'

declare const valueType: unique symbol

/**
 * How a store turns its value into bytes and back. A codec is plain data (a description), because
 * it has to cross to the worker threads; build one with {@link codecs}.
 */
export interface Codec<T> {
  /** The description the workers receive. */
  readonly spec: CodecSpec
  /** Phantom: ties the codec to the value type it encodes. Never set. */
  readonly [valueType]?: T
}

/** Options of {@link codecs.json}. */
export interface JsonCodecOptions {
  /** Passed to `JSON.stringify` as its `space` argument. @defaultValue no indentation */
  readonly space?: number | string
  /**
   * Accept JSON's lossy rules (a `Map` or `Set` written as `{}`, `NaN` as `null`, functions and
   * symbols left out, typed arrays as objects of indexes) instead of refusing such values with
   * `ERR_STORE_ENCODE`. A `BigInt` or a cycle is refused either way. @defaultValue false
   */
  readonly lossy?: boolean
}

/** Options of {@link codecs.schema}. */
export interface SchemaCodecOptions {
  /**
   * fast-json-stringify's large-array mechanism. Its `'default'` loop is several times slower than
   * `JSON.stringify` on big arrays, so arrays of `largeArraySize` items or more use `JSON.stringify`.
   * @defaultValue 'json-stringify'
   */
  readonly largeArrayMechanism?: 'default' | 'json-stringify'
  /** Array length from which `largeArrayMechanism` applies. @defaultValue 20000 */
  readonly largeArraySize?: number
  /** As {@link JsonCodecOptions.lossy}. @defaultValue false */
  readonly lossy?: boolean
}

/** The names of the encode and decode functions a codec module exports. */
export interface ModuleCodecExports {
  /** Named export called as `encode(value)` inside the worker; returns a string or a Uint8Array. */
  readonly encode: string
  /** Named export called as `decode(bytes: Uint8Array)` on the main thread by `load()`. */
  readonly decode: string
}

function moduleUrl (url: string | URL): string {
  if (url instanceof URL) return url.href
  if (isAbsolute(url)) return pathToFileURL(url).href
  if (/^(file|data):/.test(url)) return url
  throw new StoreInvalidArgumentError(`codecs.module() needs a URL or an absolute path, got ${JSON.stringify(url)}; use new URL('./codec.js', import.meta.url)`)
}

function lossyOption (factory: string, lossy: unknown): boolean {
  if (lossy !== undefined && typeof lossy !== 'boolean') throw new StoreInvalidArgumentError(`${factory} options.lossy must be a boolean, got ${typeof lossy}`)
  return lossy === true
}

/** Factories for the codecs a store accepts. */
export const codecs = {
  /**
   * JSON text via `JSON.stringify` on the main thread when the write starts (so `toJSON()` runs and
   * the text is exactly what `JSON.stringify` gives), written by a worker; `JSON.parse` on load.
   */
  json<T = unknown>(options: JsonCodecOptions = {}): Codec<T> {
    return { spec: { kind: 'json', space: options.space, lossy: lossyOption('codecs.json()', options.lossy) } }
  },

  /**
   * JSON text via a fast-json-stringify serializer compiled once per worker, run on a copy taken
   * with `v8.serialize` when the write starts; decodes with `JSON.parse`.
   */
  schema<T = unknown>(jsonSchema: object, options: SchemaCodecOptions = {}): Codec<T> {
    if (jsonSchema === null || typeof jsonSchema !== 'object') throw new StoreInvalidArgumentError(`codecs.schema() needs a JSON schema object, got ${jsonSchema === null ? 'null' : typeof jsonSchema}`)
    const text = JSON.stringify(jsonSchema)
    return {
      spec: {
        kind: 'schema',
        id: createHash('sha256').update(text).digest('hex'),
        schema: jsonSchema,
        largeArrayMechanism: options.largeArrayMechanism ?? 'json-stringify',
        largeArraySize: options.largeArraySize ?? 20000,
        lossy: lossyOption('codecs.schema()', options.lossy)
      }
    }
  },

  /**
   * The named exports of an ES module: `encode` runs inside the worker on a copy taken with
   * `v8.serialize` when the write starts, `decode` on the main thread (so a decoder that builds
   * class instances returns them with their prototypes).
   */
  module<T = unknown>(url: string | URL, exports: ModuleCodecExports = { encode: 'encode', decode: 'decode' }): Codec<T> {
    const href = moduleUrl(url)
    // Checked now, where the mistake is made, rather than at the first save in a worker.
    if (href.startsWith('file:') && !existsSync(fileURLToPath(href))) {
      throw new StoreInvalidArgumentError(`codecs.module(): no file at ${fileURLToPath(href)}; build it first, or check the path (new URL('./codec.js', import.meta.url) resolves against the calling module)`)
    }
    if (exports === null || typeof exports !== 'object' || typeof exports.encode !== 'string' || typeof exports.decode !== 'string') {
      throw new StoreInvalidArgumentError('codecs.module(): exports must be { encode: string, decode: string }, the names of the module\'s functions')
    }
    return { spec: { kind: 'module', url: href, encode: exports.encode, decode: exports.decode } }
  },

  /**
   * The value is a string or a Uint8Array written as is; a whole-buffer Uint8Array is transferred,
   * not copied, and any other Uint8Array is copied when the write starts.
   */
  raw (): Codec<string | Uint8Array> {
    return { spec: { kind: 'raw' } }
  }
} as const

const importOnMainThread: ModuleImporter = async (url) => await import(url) as Record<string, unknown>

/** Decodes file bytes on the main thread, so the result keeps its prototypes. */
export async function decode (spec: CodecSpec, bytes: Uint8Array): Promise<unknown> {
  return await decodeBytes(spec, bytes, importOnMainThread)
}
