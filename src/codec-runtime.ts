import { baseOf, type SealPurpose, type Unwrapped, unwrapAsync } from './codec-frames.js'
import type { CodecSpec } from './protocol.js'

// What both threads need to run a codec, written once: the main thread decodes on load, the keyed
// writer decodes to rebuild its mirror, the writers encode. Pure and stateless: each side keeps its
// own module cache and passes its importer in, so no state is shared across the thread boundary.

/** Imports a codec module by URL (each thread caches its own). */
export type ModuleImporter = (url: string) => Promise<Record<string, unknown>>

/** Removes a codec's compression and encryption frames: `unwrapAsync` or `unwrapSync` from codec-frames.ts. */
export type Unwrapper = (spec: CodecSpec, bytes: Uint8Array, purpose: SealPurpose) => Unwrapped | Promise<Unwrapped>

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A codec module's named export as a function; throws saying which module lacks which export. */
export function codecExport (mod: Record<string, unknown>, url: string, name: string): (input: never) => unknown {
  const fn = mod[name]
  if (typeof fn !== 'function') throw new TypeError(`codec module ${url} has no exported function ${JSON.stringify(name)}`)
  return fn as (input: never) => unknown
}

/**
 * Decodes file bytes with the codec `spec` describes, after removing the compression and encryption
 * frames it allows with `unwrap` (by default on libuv's thread pool when large, which suits the
 * main thread; a worker, the thread meant to block, passes `unwrapSync`); a module codec's decoder
 * is imported with `importModule`.
 */
export async function decodeBytes (spec: CodecSpec, bytes: Uint8Array, importModule: ModuleImporter, unwrap: Unwrapper = unwrapAsync): Promise<unknown> {
  const { base, bytes: plain } = await unwrap(spec, bytes, { kind: 'file' })
  switch (base.kind) {
    case 'json':
    case 'schema':
      return JSON.parse(utf8.decode(plain))
    case 'module': {
      const decode = codecExport(await importModule(base.url), base.url, base.decode) as (bytes: Uint8Array) => unknown
      return await decode(plain)
    }
    case 'raw':
      return plain
    default:
      throw new Error(`unknown codec kind ${JSON.stringify((base as { kind: unknown }).kind)}: this should not happen`)
  }
}

/** True when the codec writes JSON text (under any wrappers), so a value must survive the trip as `JSON.stringify` would see it. */
export function isJsonCodec (spec: CodecSpec): boolean {
  const base = baseOf(spec)
  return base.kind === 'json' || base.kind === 'schema'
}

/** True when a JSON codec was built with `{ lossy: true }`: JSON's silent drops are accepted. */
export function acceptsLossyJson (spec: CodecSpec): boolean {
  const base = baseOf(spec)
  return (base.kind === 'json' || base.kind === 'schema') && base.lossy === true
}
