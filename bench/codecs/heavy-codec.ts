import { performance } from 'node:perf_hooks'

// A slow user encoder: about 20 ms of CPU per call, then JSON. It is a
// codecs.module() fixture, so the offloaded mode runs it in the worker and the inline mode imports
// and calls the very same function on the main thread.

/** CPU milliseconds each encode burns before encoding. */
export const HEAVY_ENCODE_MS = 20

/** Burns {@link HEAVY_ENCODE_MS} of CPU (a busy loop, as a real slow encoder would), then JSON.stringify. */
export function encode (value: unknown): string {
  const end = performance.now() + HEAVY_ENCODE_MS
  let spin = 0
  while (performance.now() < end) spin++
  // `spin` keeps the loop from being optimised away; it never reaches the output.
  return spin < 0 ? '' : JSON.stringify(value)
}

/** Parses what {@link encode} wrote. */
export function decode (bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
}
