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

/** Each entry's `"key":value` JSON, kept while the entry is unchanged. */
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
   * The mirror as UTF-8 JSON, byte for byte `JSON.stringify(Object.fromEntries(mirror))`, or
   * undefined when a key is an array index (the caller then stringifies the object, whose order
   * differs from the Map's). The bytes are valid until the next call. Throws what JSON.stringify
   * throws for a value.
   */
  bytes (mirror: ReadonlyMap<string, unknown>): Uint8Array | undefined {
    const out = this.#out
    out.start()
    if (this.#first) {
      this.#first = false
      for (const [key, value] of mirror) {
        if (isArrayIndex(key)) return undefined
        const json = JSON.stringify(value) as string | undefined
        if (json !== undefined) out.member(`${JSON.stringify(key)}:${json}`)
      }
      return out.end()
    }
    for (const [key, value] of mirror) {
      let member = this.#members.get(key)
      if (member === undefined && !this.#members.has(key)) {
        if (isArrayIndex(key)) return undefined
        // The value's toJSON (a Date's) would get the key from JSON.stringify of the object; every
        // toJSON a structured clone can carry ignores it.
        const json = JSON.stringify(value) as string | undefined
        member = json === undefined ? undefined : `${JSON.stringify(key)}:${json}`
        this.#members.set(key, member)
      }
      if (member !== undefined) out.member(member)
    }
    return out.end()
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
