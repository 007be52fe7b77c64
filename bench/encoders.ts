import { createRequire } from 'node:module'
import { type Codec, codecs } from 'offload-store'
import { benchStateSchema } from './data.js'

// fast-json-stringify is CommonJS; createRequire keeps its types, as workers/encoders.ts does.
const require = createRequire(import.meta.url)
const fastJson = require('fast-json-stringify') as typeof import('fast-json-stringify').default

/** The encoders of the scenario matrix. */
export type EncoderName = 'json' | 'schema' | 'heavy'

/** One encoder in both forms: the codec the store sends to its worker, and the same work as a main-thread call. */
export interface BenchEncoder {
  readonly name: string
  readonly codec: Codec<unknown>
  /** What the inline mode runs on the main thread: the very encoder the worker runs. */
  readonly encodeInline: (value: unknown) => string | Uint8Array
}

// The schema codec's defaults, so the inline serializer takes the same large-array path as the worker's.
const SCHEMA_OPTIONS = { largeArrayMechanism: 'json-stringify', largeArraySize: 20000 } as const

/** Builds a {@link BenchEncoder} around a user's ES module exporting `encode` (and `decode` for load()). */
export async function moduleEncoder (name: string, url: URL): Promise<BenchEncoder> {
  const mod = await import(url.href) as Record<string, unknown>
  const encode = mod['encode']
  if (typeof encode !== 'function') throw new TypeError(`${url.href} has no exported function "encode"`)
  return { name, codec: codecs.module(url), encodeInline: encode as (value: unknown) => string | Uint8Array }
}

/** Resolves one of the matrix's encoders. */
export async function benchEncoder (name: EncoderName): Promise<BenchEncoder> {
  switch (name) {
    case 'json':
      return { name, codec: codecs.json(), encodeInline: (value) => JSON.stringify(value) }
    case 'schema': {
      const serialize = fastJson(benchStateSchema, SCHEMA_OPTIONS) as (value: unknown) => string
      return { name, codec: codecs.schema(benchStateSchema, SCHEMA_OPTIONS), encodeInline: serialize }
    }
    case 'heavy':
      return await moduleEncoder(name, new URL('./codecs/heavy-codec.js', import.meta.url))
    default:
      throw new Error(`unknown encoder ${JSON.stringify(name as unknown)}: this should not happen`)
  }
}
