// A light user codec for the CPU verdict: JSON, run by the worker through codecs.module(), so the
// main thread's share of a save is only the hand-off, whatever the store does with JSON codecs.

/** JSON of the value. */
export function encode (value: unknown): string {
  return JSON.stringify(value)
}

/** Parses what {@link encode} wrote. */
export function decode (bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
}
