import { createCipheriv, createDecipheriv, type KeyObject, randomBytes, webcrypto } from 'node:crypto'
import { promisify } from 'node:util'
import { brotliCompressSync, brotliDecompress, brotliDecompressSync, constants as zlib, gunzip, gunzipSync, gzipSync } from 'node:zlib'
import type { BaseCodecSpec, CodecSpec, EncryptionSpec } from './protocol.js'

// The compression and encryption frames around a codec's bytes. Pure and stateless, shared by both
// threads: workers wrap what they encode, the main thread unwraps on load, the keyed writer
// unwraps to rebuild its mirror. A file says what it is by its first bytes:
//
//   gzip       a plain gzip member (1f 8b): `zcat` reads it
//   brotli     "\x89OSBR" + format byte 0x01, then a brotli stream (brotli has no magic of its own)
//   encrypted  "\x89OSENC" + format byte 0x01 + key id length (u8) + key id (UTF-8) + nonce (12)
//              + AES-256-GCM ciphertext + tag (16). The associated data is every header byte
//              before the ciphertext and what the bytes are for (the store's name; for a journal
//              record, the snapshot it extends and its offset), so a header cannot be edited and a
//              file cannot be moved to another store, or a record to another place.
//
// JSON text cannot begin with 0x1f or 0x89, so under a JSON codec the frames are always told apart
// from plain text: a store can switch compression on or off and still read its older files.

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b])
const BROTLI_MAGIC = Buffer.from([0x89, 0x4f, 0x53, 0x42, 0x52, 0x01])
const SEALED_MAGIC = Buffer.from([0x89, 0x4f, 0x53, 0x45, 0x4e, 0x43])
const SEALED_VERSION = 1
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** Bytes AES-256 needs. */
export const KEY_BYTES = 32
/** A key id is written behind a one-byte length. */
export const MAX_KEY_ID_BYTES = 255

/**
 * From this many bytes, load() decompresses and decrypts on libuv's thread pool (async zlib,
 * WebCrypto) instead of on the calling thread: below it the hop costs more than the work
 * (docs/codecs.md has the figures).
 */
const OFF_THREAD_MIN_BYTES = 64 * 1024

/**
 * The most bytes a compressed file may inflate to: beyond what any store's value can be (V8's
 * longest string, which JSON.parse needs, is about 512 MiB), and low enough that a planted file of
 * a few hundred kilobytes cannot make load() exhaust memory.
 */
const MAX_INFLATED_BYTES = 1024 * 1024 * 1024
const INFLATE = { maxOutputLength: MAX_INFLATED_BYTES }

// zlib stops at maxOutputLength with a RangeError; say what happened, in a store's terms.
function inflated<T> (run: () => T): T {
  try {
    return run()
  } catch (err) {
    throw tooLarge(err)
  }
}

function tooLarge (err: unknown): unknown {
  if ((err as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') return err
  return new RangeError('the file decompresses to more than 1 GiB, more than a store ever writes: refused (a planted or damaged file?)', { cause: err })
}

/** What a frame's first bytes say it is. */
type Frame = 'gzip' | 'brotli' | 'sealed' | 'plain'

function startsWith (bytes: Uint8Array, magic: Buffer): boolean {
  if (bytes.byteLength < magic.byteLength) return false
  for (let i = 0; i < magic.byteLength; i++) if (bytes[i] !== magic[i]) return false
  return true
}

/** The frame `bytes` start with. */
function frameOf (bytes: Uint8Array): Frame {
  if (startsWith(bytes, GZIP_MAGIC)) return 'gzip'
  if (startsWith(bytes, BROTLI_MAGIC)) return 'brotli'
  if (startsWith(bytes, SEALED_MAGIC)) return 'sealed'
  return 'plain'
}

/** The codec at the centre of any wrappers: the one that turns the value into bytes. */
export function baseOf (spec: CodecSpec): BaseCodecSpec {
  switch (spec.kind) {
    case 'encrypted': return baseOf(spec.inner)
    case 'gzip':
    case 'brotli': return spec.inner
    default: return spec
  }
}

/** `spec` with its base codec replaced by `map(base)`, the wrappers kept. */
export function mapBase (spec: CodecSpec, map: (base: BaseCodecSpec) => BaseCodecSpec): CodecSpec {
  switch (spec.kind) {
    case 'encrypted': {
      const inner = spec.inner
      return { ...spec, inner: inner.kind === 'gzip' || inner.kind === 'brotli' ? { ...inner, inner: map(inner.inner) } : map(inner) }
    }
    case 'gzip':
    case 'brotli': return { ...spec, inner: map(spec.inner) }
    default: return map(spec)
  }
}

/** `spec` bound to the store named `name`: an encrypted codec authenticates its files as that store's. */
export function bindStore (spec: CodecSpec, name: string): CodecSpec {
  return spec.kind === 'encrypted' ? { ...spec, associated: name } : spec
}

/** The codec's shape for messages, such as `encrypted(gzip(json))`: never a key, never a schema. */
function describeCodec (spec: CodecSpec): string {
  return spec.kind === 'encrypted' || spec.kind === 'gzip' || spec.kind === 'brotli' ? `${spec.kind}(${describeCodec(spec.inner)})` : spec.kind
}

/** What sealed bytes are: a store's file, or one record of its journal (bound to its snapshot and offset). */
export type SealPurpose =
  | { readonly kind: 'file' }
  | { readonly kind: 'journal', readonly snapshot: { readonly bytes: number, readonly crc: number }, readonly offset: number }

function associatedData (header: Uint8Array, spec: EncryptionSpec, purpose: SealPurpose): Buffer {
  const what = purpose.kind === 'file' ? ['file'] : ['journal', purpose.snapshot.bytes, purpose.snapshot.crc, purpose.offset]
  return Buffer.concat([header, Buffer.from(JSON.stringify(['offload-store', spec.associated ?? '', ...what]))])
}

function asBytes (data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data) : data
}

function seal (spec: EncryptionSpec, plain: Uint8Array, purpose: SealPurpose): Buffer {
  const first = spec.keys[0]
  if (first === undefined) throw new Error('an encrypted codec without a key: this should not happen')
  const id = Buffer.from(first.id)
  const nonce = randomBytes(NONCE_BYTES)
  const header = Buffer.concat([SEALED_MAGIC, Buffer.from([SEALED_VERSION, id.byteLength]), id, nonce])
  const cipher = createCipheriv('aes-256-gcm', first.key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(associatedData(header, spec, purpose))
  const body = cipher.update(plain)
  const last = cipher.final()
  return Buffer.concat([header, body, last, cipher.getAuthTag()])
}

/**
 * Wraps encoded bytes as `spec` says (compress, then encrypt); a base codec's bytes are returned as
 * they are. Synchronous: it runs in a worker, which has nothing else to do meanwhile.
 */
export function wrapBytes (spec: CodecSpec, data: string | Uint8Array, purpose: SealPurpose): string | Uint8Array {
  switch (spec.kind) {
    case 'encrypted': return seal(spec, asBytes(wrapBytes(spec.inner, data, purpose)), purpose)
    case 'gzip': return gzipSync(data, { level: spec.level })
    case 'brotli': {
      const bytes = asBytes(data)
      const mode = spec.inner.kind === 'json' || spec.inner.kind === 'schema' ? zlib.BROTLI_MODE_TEXT : zlib.BROTLI_MODE_GENERIC
      const params = { [zlib.BROTLI_PARAM_QUALITY]: spec.quality, [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength, [zlib.BROTLI_PARAM_MODE]: mode }
      return Buffer.concat([BROTLI_MAGIC, brotliCompressSync(bytes, { params })])
    }
    default: return data
  }
}

/** A sealed frame taken apart; the key is looked up by the id its header names. */
interface Sealed {
  readonly id: string
  readonly key: KeyObject
  readonly nonce: Uint8Array
  readonly aad: Buffer
  /** Ciphertext followed by the tag. */
  readonly body: Uint8Array
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function unseal (spec: EncryptionSpec, bytes: Uint8Array, purpose: SealPurpose): Sealed {
  const fixed = SEALED_MAGIC.byteLength + 2
  const version = bytes[SEALED_MAGIC.byteLength]
  if (version !== SEALED_VERSION) throw new Error(`the encrypted frame is in format ${String(version)}, which this version does not know`)
  const idBytes = bytes[SEALED_MAGIC.byteLength + 1] ?? 0
  const bodyStart = fixed + idBytes + NONCE_BYTES
  if (bytes.byteLength < bodyStart + TAG_BYTES) throw new Error(`the encrypted frame is truncated (${bytes.byteLength} bytes, shorter than its header and tag)`)
  let id: string
  try {
    id = strictUtf8.decode(bytes.subarray(fixed, fixed + idBytes))
  } catch {
    throw new Error('the encrypted frame\'s key id is not UTF-8: the header was damaged')
  }
  const entry = spec.keys.find((candidate) => candidate.id === id)
  if (entry === undefined) {
    throw new Error(`the data was encrypted with key id ${JSON.stringify(id)}, which is not among this codec's keys (${spec.keys.map((k) => JSON.stringify(k.id)).join(', ')})`)
  }
  return {
    id,
    key: entry.key,
    nonce: bytes.subarray(bodyStart - NONCE_BYTES, bodyStart),
    aad: associatedData(bytes.subarray(0, bodyStart), spec, purpose),
    body: bytes.subarray(bodyStart)
  }
}

function authenticationFailed (spec: EncryptionSpec, sealed: Sealed): Error {
  return new Error(`authentication failed (AES-256-GCM, key id ${JSON.stringify(sealed.id)}): the bytes were changed or truncated, belong to another store than ${JSON.stringify(spec.associated ?? '')} or to another place, or were encrypted with a different key under that id`)
}

function openSync (spec: EncryptionSpec, bytes: Uint8Array, purpose: SealPurpose): Uint8Array {
  const sealed = unseal(spec, bytes, purpose)
  const tagAt = sealed.body.byteLength - TAG_BYTES
  const decipher = createDecipheriv('aes-256-gcm', sealed.key, sealed.nonce, { authTagLength: TAG_BYTES })
  decipher.setAAD(sealed.aad)
  decipher.setAuthTag(sealed.body.subarray(tagAt))
  const body = decipher.update(sealed.body.subarray(0, tagAt))
  try {
    return Buffer.concat([body, decipher.final()])
  } catch {
    throw authenticationFailed(spec, sealed)
  }
}

async function openAsync (spec: EncryptionSpec, bytes: Uint8Array, purpose: SealPurpose): Promise<Uint8Array> {
  const sealed = unseal(spec, bytes, purpose)
  // WebCrypto runs on libuv's thread pool: a large file is decrypted off the calling thread.
  const key = await webcrypto.subtle.importKey('raw', sealed.key.export(), { name: 'AES-GCM' }, false, ['decrypt'])
  try {
    return new Uint8Array(await webcrypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.nonce, additionalData: sealed.aad, tagLength: TAG_BYTES * 8 }, key, sealed.body))
  } catch {
    throw authenticationFailed(spec, sealed)
  }
}

/** One step of unwrapping, performed by the caller synchronously or not. */
type Step =
  | { readonly op: 'open', readonly spec: EncryptionSpec, readonly bytes: Uint8Array }
  | { readonly op: 'gunzip' | 'unbrotli', readonly bytes: Uint8Array }

/** The base codec and its bytes, the frames removed. */
export interface Unwrapped {
  readonly base: BaseCodecSpec
  readonly bytes: Uint8Array
}

// The rules, written once for the synchronous and the asynchronous reader.
function * unwrapSteps (spec: CodecSpec, bytes: Uint8Array): Generator<Step, Unwrapped, Uint8Array> {
  const base = baseOf(spec)
  // A JSON codec's bytes never begin like a frame, so frames are looked for under it even when it
  // is not wrapped (compression switched off, or a file encrypted by mistake); a bare module or raw
  // codec's bytes are the user's own and are never second-guessed.
  const sniff = spec !== base || base.kind === 'json' || base.kind === 'schema'
  let data = bytes
  let current: CodecSpec = spec
  if (current.kind === 'encrypted') {
    const frame = frameOf(data)
    if (frame !== 'sealed') throw new Error(`the data is not encrypted (${frame === 'plain' ? 'plain' : frame}), but this codec is ${describeCodec(spec)}: unauthenticated data is refused, since anyone who can write the file could have put it there`)
    data = yield { op: 'open', spec: current, bytes: data }
    current = current.inner
  }
  if (!sniff) return { base, bytes: data }
  switch (frameOf(data)) {
    case 'gzip': data = yield { op: 'gunzip', bytes: data }; break
    case 'brotli': data = yield { op: 'unbrotli', bytes: data.subarray(BROTLI_MAGIC.byteLength) }; break
    case 'sealed': throw new Error(`the data is encrypted (AES-256-GCM), but this codec is ${describeCodec(spec)}; read it with codecs.encrypted(inner, { keys })`)
    case 'plain': break
  }
  return { base, bytes: data }
}

/** Removes the frames `spec` allows from `bytes`, on the calling thread (a journal record, small data, a worker's read). */
export function unwrapSync (spec: CodecSpec, bytes: Uint8Array, purpose: SealPurpose): Unwrapped {
  const steps = unwrapSteps(spec, bytes)
  let next = steps.next(bytes)
  while (next.done !== true) {
    const step = next.value
    switch (step.op) {
      case 'open': next = steps.next(openSync(step.spec, step.bytes, purpose)); break
      case 'gunzip': next = steps.next(inflated(() => gunzipSync(step.bytes, INFLATE))); break
      case 'unbrotli': next = steps.next(inflated(() => brotliDecompressSync(step.bytes, INFLATE))); break
      default: throw new Error(`unknown step ${JSON.stringify((step as { op: unknown }).op)}: this should not happen`)
    }
  }
  return next.value
}

/**
 * Opens a journal's change record as `spec` says, bound to the snapshot the journal extends and the
 * record's offset (the pure function both threads hand to `parseJournal`).
 */
export function recordOpener (spec: CodecSpec): (payload: Uint8Array, at: number, snapshot: { readonly bytes: number, readonly crc: number }) => Uint8Array {
  return (payload, offset, snapshot) => unwrapSync(spec, payload, { kind: 'journal', snapshot, offset }).bytes
}

const gunzipAsync = promisify(gunzip)
const unbrotliAsync = promisify(brotliDecompress)

/** Removes the frames `spec` allows from `bytes`; large ones are decompressed and decrypted on libuv's thread pool. */
export async function unwrapAsync (spec: CodecSpec, bytes: Uint8Array, purpose: SealPurpose): Promise<Unwrapped> {
  const steps = unwrapSteps(spec, bytes)
  let next = steps.next(bytes)
  while (next.done !== true) {
    const step = next.value
    const offThread = step.bytes.byteLength >= OFF_THREAD_MIN_BYTES
    switch (step.op) {
      case 'open': next = steps.next(offThread ? await openAsync(step.spec, step.bytes, purpose) : openSync(step.spec, step.bytes, purpose)); break
      case 'gunzip': next = steps.next(offThread ? await gunzipAsync(step.bytes, INFLATE).catch((err: unknown) => { throw tooLarge(err) }) : inflated(() => gunzipSync(step.bytes, INFLATE))); break
      case 'unbrotli': next = steps.next(offThread ? await unbrotliAsync(step.bytes, INFLATE).catch((err: unknown) => { throw tooLarge(err) }) : inflated(() => brotliDecompressSync(step.bytes, INFLATE))); break
      default: throw new Error(`unknown step ${JSON.stringify((step as { op: unknown }).op)}: this should not happen`)
    }
  }
  return next.value
}
