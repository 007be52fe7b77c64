import { opsOfPart } from '../src/keyed-part.js'
import type { KeyedOp, KeyedPart } from '../src/protocol.js'

// A large save reaches a keyed writer as 'ops' parts followed by its 'write'. The parts only count
// if every one of them arrived, in order, for that write: a worker replaced in the middle, or a
// save abandoned after some parts, must never write a state holding only some of its changes.

/** The 'ops' parts received since the last write, checked for gaps. */
export class StagedOps {
  #parts: Array<readonly KeyedOp[]> = []
  #intact = true

  /** True when no part is waiting for its write. */
  get empty (): boolean { return this.#parts.length === 0 }

  /**
   * Keeps part `index` and returns its changes as ops; part 0 drops the parts of a save whose write
   * never came. `intact` turns false when the part is not the one expected next: the write they
   * belong to will be refused.
   */
  add (index: number, part: KeyedPart): { readonly ops: readonly KeyedOp[], readonly intact: boolean } {
    if (index === 0) this.clear()
    else if (index !== this.#parts.length) this.#intact = false
    const ops = opsOfPart(part)
    this.#parts.push(ops)
    return { ops, intact: this.#intact }
  }

  /**
   * The parts of a write that says `count` came ahead of it, in order, or undefined when they did
   * not all arrive; forgets them either way. A write with none drops those of a save abandoned before its write.
   */
  take (count: number): Array<readonly KeyedOp[]> | undefined {
    const parts = this.#parts
    const intact = count === 0 || (this.#intact && parts.length === count)
    this.clear()
    return !intact ? undefined : count === 0 ? [] : parts
  }

  /** Forgets every part. */
  clear (): void {
    this.#parts = []
    this.#intact = true
  }
}

/** All the changes of one write: its parts sent ahead, then the write's own. */
export function joinOps (parts: ReadonlyArray<readonly KeyedOp[]>, last: readonly KeyedOp[]): readonly KeyedOp[] {
  if (parts.length === 0) return last
  const all: KeyedOp[] = []
  for (const part of parts) for (const op of part) all.push(op)
  for (const op of last) all.push(op)
  return all
}
