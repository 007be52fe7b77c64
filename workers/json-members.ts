// Splits a keyed store's JSON file into runs of top-level members, so the main thread can parse it
// a few milliseconds at a time instead of in one JSON.parse that blocks its event loop for as long
// as the file is large. The keyed writer runs this on the bytes the main thread read; it never
// decides whether the file is valid: the main thread's JSON.parse of each run does, and anything
// this scanner does not recognise sends the file down the whole-file path, whose errors are the
// ones load() has always given.

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39

/** The bytes of a run: about 1 ms of JSON.parse on the main thread, which parses as many runs per slice as fit. */
export const RUN_BYTES = 64 * 1024

/** The file's members as array text, cut into runs: see {@link splitMembers}. */
export interface SplitMembers {
  /** A copy of the bytes in which the colon after each top-level key is a comma. */
  readonly members: Uint8Array<ArrayBuffer>
  /** Per run, three numbers: its start and end byte in `members`, and how many members it holds. */
  readonly runs: Int32Array<ArrayBuffer>
}

function isSpace (byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

/**
 * Cuts the top-level object in `bytes` into runs of whole members of about `runBytes` each. In the
 * copy it returns, the colon after each top-level key is a comma, so `[` + run + `]` parses as
 * `[key, value, key, value, ...]`: an array, which JSON.parse builds about twice as fast as an
 * object of the same members. Undefined when the text is not an object whose keys can go into a Map
 * in file order: not an object, a key that may be an array index (JSON.parse lists those first, in
 * numeric order), or anything the scan does not expect. Never throws on any bytes.
 */
export function splitMembers (bytes: Uint8Array, runBytes: number): SplitMembers | undefined {
  const n = bytes.byteLength
  if (n >= 0x7fffffff) return undefined // offsets are int32
  // One function, one pass: this runs once per worker, mostly before the JIT has optimised it, and
  // loops in one function are optimised while they run where a helper called per member is not.
  const members = new Uint8Array(bytes)
  const runs: number[] = []
  let at = 0
  // TextDecoder drops a UTF-8 byte order mark before JSON.parse sees the text; so does this scan.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) at = 3
  while (isSpace(bytes[at])) at++
  if (bytes[at] !== OPEN_OBJECT) return undefined
  at++
  while (isSpace(bytes[at])) at++
  if (bytes[at] !== CLOSE_OBJECT) {
    let runStart = at
    let runMembers = 0
    for (;;) {
      while (isSpace(bytes[at])) at++
      if (bytes[at] !== QUOTE) return undefined
      const first = bytes[at + 1]
      // "0" … "4294967294", or an escape that may spell one: JSON.parse would reorder such keys.
      if (first === BACKSLASH || (first !== undefined && first >= DIGIT_0 && first <= DIGIT_9)) return undefined
      for (at++; at < n; at++) {
        const byte = bytes[at]
        if (byte === QUOTE) break
        if (byte === BACKSLASH) at++
      }
      at++ // past the closing quote (beyond n when there was none)
      while (isSpace(bytes[at])) at++
      if (bytes[at] !== COLON) return undefined
      members[at] = COMMA
      // The value: up to the comma or closing brace outside any string, array or object.
      let depth = 0
      for (at++; at < n; at++) {
        const byte = bytes[at]
        if (byte === QUOTE) {
          for (at++; at < n; at++) {
            const inner = bytes[at]
            if (inner === QUOTE) break
            if (inner === BACKSLASH) at++
          }
        } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
          depth++
        } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
          if (depth === 0) {
            if (byte === CLOSE_OBJECT) break
            return undefined
          }
          depth--
        } else if (byte === COMMA && depth === 0) {
          break
        }
      }
      if (at >= n) return undefined
      runMembers++
      const last = bytes[at] === CLOSE_OBJECT
      if (last || at - runStart >= runBytes) {
        runs.push(runStart, at, runMembers)
        runStart = at + 1
        runMembers = 0
      }
      if (last) break
      at++ // the comma
    }
  }
  at++
  while (isSpace(bytes[at])) at++
  if (at !== n) return undefined
  return { members, runs: Int32Array.from(runs) }
}
