import type { KeyedOp } from '../src/protocol.js'

// The keyed writer's snapshot for the plain JSON codec, built from each entry's JSON kept between
// snapshots: a save that changed 1% of the entries stringifies that 1%, and joins the rest. The
// text is byte for byte `JSON.stringify(Object.fromEntries(mirror))`: same members, same order, so
// a file never depends on whether the cache was used.

// An array index ("0" … "4294967294"): an object lists these first, in numeric order, whatever
// order they were set in, so a join in the Map's order would differ from JSON.stringify's.
function isArrayIndex (key: string): boolean {
  const first = key.charCodeAt(0)
  if (first < 48 || first > 57 || key.length > 10) return false
  return (key === '0' || first !== 48) && /^\d+$/.test(key) && Number(key) < 4294967295
}

// Put in the mirror in place of a value whose JSON is kept: from then on the text stands for the
// value, so the worker does not hold every entry twice (objects and text).
const ENCODED: unique symbol = Symbol('encoded')

/**
 * Each entry's `"key":value` JSON, kept while the entry is unchanged. A value whose JSON is kept is
 * let go of: the mirror holds a marker in its place until a change brings a new value.
 */
export class JsonSnapshot {
  // undefined: the value has no JSON (undefined), so the member is left out, as JSON.stringify does.
  readonly #members = new Map<string, string | undefined>()
  // Keeping every member costs the snapshot that fills the cache twice what joining them without
  // keeping does (1M entries: ~1,000 against ~450 ms), so the first snapshot of a mirror keeps
  // none: a store saved once (a first fill, an import) never pays for it, and one saved again pays
  // for it on its second snapshot, after which each costs only the entries changed.
  #first = true
  // The members are copied into one buffer kept between snapshots: joining them into a string and
  // encoding that made two garbage copies of the whole file per snapshot (66k entries, 16 MB: 44-48
  // ms against 20-21 ms per snapshot), and collecting them kept the GC's threads on the CPUs the
  // event loop needs.
  readonly #out = new SnapshotBuffer()

  /** Drops what the changes make stale; call with every batch applied to the mirror. */
  forget (ops: readonly KeyedOp[]): void {
    // A first fill of a million entries would look each one up in a cache that holds none.
    if (this.#members.size === 0) return
    for (const op of ops) this.#members.delete(op[0])
  }

  /** Drops everything: the mirror was replaced. */
  clear (): void {
    this.#members.clear()
    this.#first = true
  }

  /**
   * The mirror as UTF-8 JSON, byte for byte `JSON.stringify(Object.fromEntries(mirror))`. From the
   * second snapshot of a mirror on, each value whose JSON is now kept is replaced in `mirror` by a
   * marker: read the mirror's values only through this class. The bytes are valid until the next
   * call. Throws what JSON.stringify throws for a value.
   */
  bytes (mirror: Map<string, unknown>): Uint8Array {
    const out = this.#out
    out.start()
    const keep = !this.#first
    this.#first = false
    for (const [key, value] of mirror) {
      if (isArrayIndex(key)) return this.#ordered(mirror, keep)
      const member = this.#member(mirror, key, value, keep)
      if (member !== undefined) out.member(member)
    }
    return out.end()
  }

  // An array-index key is listed first by JSON.stringify of the object, in numeric order (rare:
  // such keys are documented as reordered).
  #ordered (mirror: Map<string, unknown>, keep: boolean): Uint8Array {
    // A mirror's first snapshot keeps nothing and so let go of no value: the object's own JSON is
    // exact, and the quickest (100k such keys: 108 ms, where building and sorting members took 203).
    if (!keep) return Buffer.from(JSON.stringify(Object.fromEntries(mirror)))
    const indexed: Array<[number, string]> = []
    const named: string[] = []
    for (const [key, value] of mirror) {
      const member = this.#member(mirror, key, value, keep)
      if (member === undefined) continue
      if (isArrayIndex(key)) indexed.push([Number(key), member])
      else named.push(member)
    }
    // Sorted here rather than by an object of those keys, which enumerated them in twice the time.
    indexed.sort((a, b) => a[0] - b[0])
    const out = this.#out
    out.start()
    for (const [, member] of indexed) out.member(member)
    for (const member of named) out.member(member)
    return out.end()
  }

  #member (mirror: Map<string, unknown>, key: string, value: unknown, keep: boolean): string | undefined {
    if (keep) {
      const member = this.#members.get(key)
      if (member !== undefined || this.#members.has(key)) return member
    }
    if (value === ENCODED) throw new Error(`the value of ${JSON.stringify(key)} was let go of, and its JSON is not kept: this should not happen`)
    // The value's toJSON (a Date's) would get the key from JSON.stringify of the object; every
    // toJSON a structured clone can carry ignores it.
    const json = JSON.stringify(value) as string | undefined
    const member = json === undefined ? undefined : `${JSON.stringify(key)}:${json}`
    if (keep) {
      this.#members.set(key, member)
      // Set on a key the iteration already reached: the Map's order does not change.
      mirror.set(key, ENCODED)
    }
    return member
  }
}

const OPEN = 0x7b // {
const COMMA = 0x2c
const CLOSE = 0x7d // }

/** `{member,member,...}` written as UTF-8 into one buffer that grows and is reused. */
class SnapshotBuffer {
  #buffer = Buffer.allocUnsafeSlow(64 * 1024)
  #length = 0

  start (): void {
    this.#buffer[0] = OPEN
    this.#length = 1
  }

  member (text: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8; the comma one more.
    this.#ensure(3 * text.length + 1)
    const buffer = this.#buffer
    if (this.#length > 1) buffer[this.#length++] = COMMA
    this.#length += buffer.write(text, this.#length)
  }

  end (): Uint8Array {
    this.#ensure(1)
    this.#buffer[this.#length++] = CLOSE
    return this.#buffer.subarray(0, this.#length)
  }

  #ensure (bytes: number): void {
    const needed = this.#length + bytes
    if (needed <= this.#buffer.length) return
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.#buffer.length, needed))
    this.#buffer.copy(grown, 0, 0, this.#length)
    this.#buffer = grown
  }
}
