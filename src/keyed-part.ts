import type { KeyedOp, KeyedPart } from './protocol.js'

/**
 * The changes of a part as ops: its deletes, then its sets in order. Each key is in a write's
 * changes once (a key deleted and set again comes as a delete then a set), so applying the deletes
 * first gives the same map, in the same order, as applying the changes as they were made.
 */
export function opsOfPart (part: KeyedPart): KeyedOp[] {
  const { deletes, keys, values } = part
  const ops: KeyedOp[] = []
  for (const key of deletes) ops.push([key])
  for (let i = 0; i < keys.length; i++) ops.push([keys[i] ?? '', values[i]])
  return ops
}
