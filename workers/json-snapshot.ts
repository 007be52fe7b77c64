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
   * The mirror as JSON text, or undefined when a key is an array index (the caller then stringifies
   * the object, whose order differs from the Map's). Throws what JSON.stringify throws for a value.
   */
  text (mirror: ReadonlyMap<string, unknown>): string | undefined {
    if (this.#first) {
      this.#first = false
      return uncachedText(mirror)
    }
    const parts: string[] = []
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
      if (member !== undefined) parts.push(member)
    }
    return `{${parts.join(',')}}`
  }
}

/** {@link JsonSnapshot.text} without keeping the members. */
function uncachedText (mirror: ReadonlyMap<string, unknown>): string | undefined {
  const parts: string[] = []
  for (const [key, value] of mirror) {
    if (isArrayIndex(key)) return undefined
    const json = JSON.stringify(value) as string | undefined
    if (json !== undefined) parts.push(`${JSON.stringify(key)}:${json}`)
  }
  return `{${parts.join(',')}}`
}
