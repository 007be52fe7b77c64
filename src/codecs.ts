import { createHash, createSecretKey, KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { KEY_BYTES, MAX_KEY_ID_BYTES } from './codec-frames.js'
import { decodeBytes, type ModuleImporter } from './codec-runtime.js'
import { StoreInvalidArgumentError } from './errors.js'
import type { BaseCodecSpec, CodecKey, CodecSpec, CompressionSpec } from './protocol.js'
import type { LoadValidation, StandardSchemaV1 } from './validation.js'

declare const valueType: unique symbol

/**
 * How a store turns its value into bytes and back. A codec is plain data (a description), because
 * it has to cross to the worker threads; build one with {@link codecs}.
 */
export interface Codec<T> {
  /** The description the workers receive. */
  readonly spec: CodecSpec
  /** What load() checks the value against, on the main thread (never sent to a worker). */
  readonly validation?: LoadValidation | undefined
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
  /**
   * Also validate the value `load()` returns against the same schema (with ajv, on the main
   * thread); a violation is `ERR_STORE_DECODE` naming the first failing `$.path` and keyword.
   * @defaultValue false
   */
  readonly validate?: boolean
}

/** Options of {@link codecs.gzip}. */
export interface GzipCodecOptions {
  /** zlib level, 0 (store) to 9 (smallest). @defaultValue 6 */
  readonly level?: number
}

/** Options of {@link codecs.brotli}. */
export interface BrotliCodecOptions {
  /** Brotli quality, 0 (fastest) to 11 (smallest, and much slower). @defaultValue 5 */
  readonly quality?: number
}

/** One key of {@link codecs.encrypted}: 32 bytes for AES-256, and the id written in each file's header. */
export interface EncryptionKey {
  /** Names the key in file headers (1 to 255 UTF-8 bytes); not secret. */
  readonly id: string
  /** 32 random bytes, or a secret `KeyObject` of 32 bytes. Copied: the caller may zero its buffer. */
  readonly key: Uint8Array | KeyObject
}

/** Options of {@link codecs.encrypted}. */
export interface EncryptedCodecOptions {
  /** New files are encrypted with the first key; a file is decrypted with the key its header names. */
  readonly keys: readonly EncryptionKey[]
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
    if (options.validate !== undefined && typeof options.validate !== 'boolean') throw new StoreInvalidArgumentError(`codecs.schema() options.validate must be a boolean, got ${typeof options.validate}`)
    const text = JSON.stringify(jsonSchema)
    return {
      validation: options.validate === true ? { jsonSchema } : undefined,
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
  },

  /**
   * gzip (zlib, in the worker) around any codec's bytes; the file is a plain gzip member. Loads
   * uncompressed and brotli files too, so compression can be switched on, off or over.
   * @throws `ERR_STORE_INVALID_ARGUMENT` for a level outside 0 to 9, or an inner codec that is
   * already compressed or encrypted.
   */
  gzip<T>(inner: Codec<T>, options: GzipCodecOptions = {}): Codec<T> {
    const level = options.level ?? 6
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new StoreInvalidArgumentError(`codecs.gzip() options.level must be an integer from 0 to 9, got ${String(level)}`)
    return { spec: { kind: 'gzip', level, inner: uncompressed('codecs.gzip()', inner) }, validation: inner.validation }
  },

  /**
   * Brotli (zlib, in the worker) around any codec's bytes, behind a 6-byte magic. Loads
   * uncompressed and gzip files too.
   * @throws `ERR_STORE_INVALID_ARGUMENT` for a quality outside 0 to 11, or an inner codec that is
   * already compressed or encrypted.
   */
  brotli<T>(inner: Codec<T>, options: BrotliCodecOptions = {}): Codec<T> {
    const quality = options.quality ?? 5
    if (!Number.isInteger(quality) || quality < 0 || quality > 11) throw new StoreInvalidArgumentError(`codecs.brotli() options.quality must be an integer from 0 to 11, got ${String(quality)}`)
    return { spec: { kind: 'brotli', quality, inner: uncompressed('codecs.brotli()', inner) }, validation: inner.validation }
  },

  /**
   * AES-256-GCM around any codec's bytes (compressed ones included: compress inside, encrypt
   * outside), in the worker: a fresh random nonce per write, the key id in the header, and the
   * store's name as associated data. Decrypts with whichever listed key the file names, encrypts
   * with the first, so the next save after adding a key re-encrypts. A changed, truncated or
   * foreign file, or an unknown key, fails `load()` with `ERR_STORE_DECODE`; so does a file that
   * is not encrypted. Protects data at rest (a stolen disk or backup), not against a process that
   * can read the key.
   * @throws `ERR_STORE_INVALID_ARGUMENT` for a missing, short or duplicate key or id.
   */
  encrypted<T>(inner: Codec<T>, options: EncryptedCodecOptions): Codec<T> {
    const spec = inner?.spec as CodecSpec | undefined
    if (spec === undefined || typeof spec.kind !== 'string') throw new StoreInvalidArgumentError('codecs.encrypted() needs a codec to wrap, such as codecs.json()')
    if (spec.kind === 'encrypted') throw new StoreInvalidArgumentError('codecs.encrypted(): the inner codec is already encrypted')
    return { spec: { kind: 'encrypted', keys: encryptionKeys(options), inner: spec }, validation: inner.validation }
  },

  /**
   * The same codec, with `load()` checking the value it returns, on the main thread: `validator`
   * is a JSON Schema (checked with ajv) or any Standard Schema validator (`~standard.validate`,
   * whose output `load()` then returns). A violation is `ERR_STORE_DECODE` naming the first
   * failing `$.path` (and keyword), or a quarantine under `onCorrupt: 'quarantine'`.
   * @throws `ERR_STORE_INVALID_ARGUMENT` for a validator that is neither.
   */
  validated<T>(inner: Codec<T>, validator: object | StandardSchemaV1<unknown, T>): Codec<T> {
    if (inner?.spec === undefined) throw new StoreInvalidArgumentError('codecs.validated() needs a codec to wrap, such as codecs.json()')
    if (validator === null || (typeof validator !== 'object' && typeof validator !== 'function')) throw new StoreInvalidArgumentError(`codecs.validated() needs a JSON Schema or a Standard Schema validator, got ${validator === null ? 'null' : typeof validator}`)
    const standard = (validator as Partial<StandardSchemaV1>)['~standard']
    if (standard !== undefined) {
      if (standard === null || typeof standard.validate !== 'function') throw new StoreInvalidArgumentError('codecs.validated(): the validator has a ~standard property without a validate function')
      return { spec: inner.spec, validation: { standard: validator as StandardSchemaV1 } }
    }
    if (typeof validator === 'function') throw new StoreInvalidArgumentError('codecs.validated() got a function: pass a JSON Schema object or a Standard Schema validator (an object with ~standard)')
    return { spec: inner.spec, validation: { jsonSchema: validator } }
  }
} as const

function uncompressed (factory: string, inner: Codec<unknown>): BaseCodecSpec {
  const spec = inner?.spec as CodecSpec | undefined
  if (spec === undefined || typeof spec.kind !== 'string') throw new StoreInvalidArgumentError(`${factory} needs a codec to wrap, such as codecs.json()`)
  if (spec.kind === 'encrypted') throw new StoreInvalidArgumentError(`${factory}: compress inside the encryption, as codecs.encrypted(${factory.replace('()', '')}(inner), { keys }); encrypted bytes do not compress`)
  if (isCompression(spec)) throw new StoreInvalidArgumentError(`${factory}: the inner codec is already compressed (${spec.kind})`)
  return spec
}

function isCompression (spec: CodecSpec): spec is CompressionSpec {
  return spec.kind === 'gzip' || spec.kind === 'brotli'
}

// Key bytes never reach a message: only lengths, indexes and ids are named.
function encryptionKeys (options: EncryptedCodecOptions): CodecKey[] {
  const keys = (options as Partial<EncryptedCodecOptions> | undefined)?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new StoreInvalidArgumentError('codecs.encrypted() options.keys must be a non-empty array of { id, key }')
  const ids = new Set<string>()
  return keys.map((entry: Partial<EncryptionKey> | null, index) => {
    const at = `codecs.encrypted() options.keys[${index}]`
    if (entry === null || typeof entry !== 'object') throw new StoreInvalidArgumentError(`${at} must be { id, key }`)
    const { id, key } = entry
    if (typeof id !== 'string' || id.length === 0 || Buffer.byteLength(id) > MAX_KEY_ID_BYTES) throw new StoreInvalidArgumentError(`${at}.id must be a string of 1 to ${MAX_KEY_ID_BYTES} UTF-8 bytes`)
    if (ids.has(id)) throw new StoreInvalidArgumentError(`${at}.id ${JSON.stringify(id)} is listed twice`)
    ids.add(id)
    let secret: KeyObject
    if (key instanceof KeyObject) {
      if (key.type !== 'secret') throw new StoreInvalidArgumentError(`${at}.key must be a secret KeyObject, got a ${key.type} one`)
      secret = key
    } else if (key instanceof Uint8Array) {
      secret = createSecretKey(key)
    } else {
      throw new StoreInvalidArgumentError(`${at}.key must be a Uint8Array or a secret KeyObject, got ${key === null ? 'null' : typeof key}`)
    }
    if (secret.symmetricKeySize !== KEY_BYTES) throw new StoreInvalidArgumentError(`${at}.key must be ${KEY_BYTES} bytes for AES-256, got ${String(secret.symmetricKeySize)} bytes`)
    return { id, key: secret }
  })
}

const importOnMainThread: ModuleImporter = async (url) => await import(url) as Record<string, unknown>

/** Decodes file bytes on the main thread, so the result keeps its prototypes. */
export async function decode (spec: CodecSpec, bytes: Uint8Array): Promise<unknown> {
  return await decodeBytes(spec, bytes, importOnMainThread)
}
