import { createCipheriv, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { deserialize, serialize } from 'node:v8'
import { brotliCompressSync, constants as zlib, gunzipSync, gzipSync } from 'node:zlib'
import { type Codec, codecs, type WriterPool } from 'offload-store'
import { generateState } from '../data.js'
import { OffloadedSaver } from '../offloaded-saver.js'
import { median } from '../percentiles.js'

// The heavy encoders users run: compression and encryption, offloaded (a Store) against inline
// (the same work on the main thread), with the file size each level saves, and the three ways a
// compressed file could be loaded, by what each blocks the main thread.

/** One wrapper at one state size. */
interface CodecCostRow {
  readonly codec: string
  readonly jsonBytes: number
  readonly fileBytes: number
  /** jsonBytes / fileBytes. */
  readonly ratio: number
  /** Main thread per save through a Store (`mainMs` of `write:end`, median). */
  readonly offloadedMainMs: number
  /** What the worker spent encoding, compressing and encrypting (median). */
  readonly workerEncodeMs: number
  /** The same work inline: JSON.stringify, then the compression and encryption, on the main thread (median). */
  readonly inlineMs: number
}

/** How a compressed file of one size could be loaded, by the main-thread time each takes (medians, ms). */
interface LoadPathRow {
  readonly jsonBytes: number
  readonly gzipBytes: number
  /** gunzipSync + JSON.parse on the main thread. */
  readonly syncMs: number
  /** JSON.parse only: async zlib inflates on libuv's thread pool (what load() does from 64 KiB). */
  readonly threadPoolMs: number
  /** v8.deserialize only: a worker inflates and parses, and the value is cloned back. */
  readonly workerCloneMs: number
}

/** The codec-cost scenario. */
export interface CodecCostResult {
  readonly kind: 'codec-cost'
  readonly rows: readonly CodecCostRow[]
  readonly loadPaths: readonly LoadPathRow[]
}

/** Options of {@link runCodecCost}. */
export interface CodecCostOptions {
  readonly dir: string
  readonly pool: WriterPool
  readonly sizes: readonly number[]
}

const KEY = randomBytes(32)

interface Variant {
  readonly name: string
  readonly codec: Codec<unknown>
  /** The same bytes, made on the calling thread. */
  readonly inline: (text: string) => Uint8Array
}

function seal (plain: Uint8Array): Uint8Array {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', KEY, nonce)
  return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
}

const brotli = (quality: number) => (text: string): Uint8Array => brotliCompressSync(text, { params: { [zlib.BROTLI_PARAM_QUALITY]: quality, [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT, [zlib.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(text) } })

const variants: readonly Variant[] = [
  { name: 'json', codec: codecs.json(), inline: (text) => Buffer.from(text) },
  { name: 'gzip(1)', codec: codecs.gzip(codecs.json(), { level: 1 }), inline: (text) => gzipSync(text, { level: 1 }) },
  { name: 'gzip(6)', codec: codecs.gzip(codecs.json(), { level: 6 }), inline: (text) => gzipSync(text, { level: 6 }) },
  { name: 'gzip(9)', codec: codecs.gzip(codecs.json(), { level: 9 }), inline: (text) => gzipSync(text, { level: 9 }) },
  { name: 'brotli(4)', codec: codecs.brotli(codecs.json(), { quality: 4 }), inline: brotli(4) },
  { name: 'brotli(5)', codec: codecs.brotli(codecs.json(), { quality: 5 }), inline: brotli(5) },
  { name: 'brotli(9)', codec: codecs.brotli(codecs.json(), { quality: 9 }), inline: brotli(9) },
  { name: 'encrypted(json)', codec: codecs.encrypted(codecs.json(), { keys: [{ id: 'bench', key: KEY }] }), inline: (text) => seal(Buffer.from(text)) },
  { name: 'encrypted(gzip(6))', codec: codecs.encrypted(codecs.gzip(codecs.json()), { keys: [{ id: 'bench', key: KEY }] }), inline: (text) => seal(gzipSync(text)) }
]

function timed (iterations: number, fn: () => void): number {
  const samples: number[] = []
  for (let i = 0; i < iterations; i++) {
    const start = performance.now()
    fn()
    samples.push(performance.now() - start)
  }
  return median(samples)
}

async function measureVariant (variant: Variant, state: object, text: string, iterations: number, options: CodecCostOptions): Promise<CodecCostRow> {
  const saver = new OffloadedSaver(join(options.dir, `${variant.name.replace(/[^\w]/g, '_')}-${text.length}`), variant.codec, options.pool)
  try {
    await saver.save(state) // warm: the worker has started and compiled what it needs
    const encodeMs: number[] = []
    for (let i = 0; i < iterations; i++) {
      await saver.save(state)
      const last = saver.store.stats().lastWrite
      if (last !== undefined) encodeMs.push(last.encodeMs)
    }
    const offloaded = saver.writes.slice(1).flatMap((w) => w.mainMs === undefined ? [] : [w.mainMs])
    const fileBytes = readFileSync(saver.store.path).byteLength
    const inlineMs = timed(iterations, () => { variant.inline(JSON.stringify(state)) })
    const jsonBytes = Buffer.byteLength(text)
    return { codec: variant.name, jsonBytes, fileBytes, ratio: jsonBytes / fileBytes, offloadedMainMs: median(offloaded), workerEncodeMs: median(encodeMs), inlineMs }
  } finally {
    await saver.close()
  }
}

function measureLoadPaths (state: object, text: string, iterations: number): LoadPathRow {
  const gz = gzipSync(text)
  const clone = serialize(state)
  return {
    jsonBytes: Buffer.byteLength(text),
    gzipBytes: gz.byteLength,
    syncMs: timed(iterations, () => { JSON.parse(gunzipSync(gz).toString('utf8')) }),
    threadPoolMs: timed(iterations, () => { JSON.parse(text) }),
    workerCloneMs: timed(iterations, () => { deserialize(clone) })
  }
}

/** Compression and encryption at each size: main-thread cost offloaded and inline, file sizes, and the load paths. */
export async function runCodecCost (options: CodecCostOptions): Promise<CodecCostResult> {
  const dir = join(options.dir, 'codec-cost')
  mkdirSync(dir, { recursive: true })
  const rows: CodecCostRow[] = []
  const loadPaths: LoadPathRow[] = []
  for (const size of options.sizes) {
    const state = generateState(size, 5)
    const text = JSON.stringify(state)
    const iterations = size > 5_000_000 ? 3 : size > 500_000 ? 7 : 15
    for (const variant of variants) rows.push(await measureVariant(variant, state, text, iterations, { ...options, dir }))
    loadPaths.push(measureLoadPaths(state, text, iterations))
  }
  return { kind: 'codec-cost', rows, loadPaths }
}
