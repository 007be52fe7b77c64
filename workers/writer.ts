import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { deserialize } from 'node:v8'
import type { WriteResult, WriteTarget, WriteTask } from '../src/protocol.js'
import { atomicWriteSync, DirectorySyncError } from './atomic-write.js'
import { wrapBytes } from '../src/codec-frames.js'
import { encodeBase, encoded } from './encoders.js'
import { type FidelityProblem, findJsonProblem } from '../src/json-problems.js'
import { FencedWrite, refuseUnchanged, writeRow } from './postgres-write.js'
import { serializeError as serialize } from './serialize-error.js'

// Piscina's worker entry: one write per call. Failures are answered as data, not thrown, because a
// structured clone would strip the error's class and its `code`.

/** A write's answer, with the bytes written when it got that far (the keyed writer fingerprints them). */
export interface EncodedWrite {
  readonly result: WriteResult
  readonly data: string | Uint8Array | undefined
}

// A copy the task's JSON check refused: what it found goes back to the main thread as data.
class Refused {
  constructor (readonly problem: FidelityProblem) {}
}

// The base codec's bytes: sent ready by the main thread, or encoded here from the value's copy,
// after the task's JSON check (a problem comes back as data; nothing is encoded or written).
// Compression and encryption come after, in encodeAndWrite.
async function bytesOf (task: WriteTask): Promise<string | Uint8Array | Refused> {
  const { form } = task
  switch (form) {
    case 'encoded':
      return encoded(task.value)
    case 'serialized': {
      const copy: unknown = deserialize(task.value as Uint8Array)
      const { check } = task
      if (check !== undefined) {
        // The copy holds no getters or proxies: reading it cannot throw or change it.
        const checked = check.member === undefined ? copy : (copy as Record<string, unknown>)[check.member]
        const problem = findJsonProblem(checked, { lossy: check.lossy, cloned: true }, check.budget)
        if (problem !== undefined) return new Refused(problem)
      }
      return await encodeBase(task.codec, copy)
    }
    default:
      throw new Error(`unknown write form ${JSON.stringify(form)}: this should not happen`)
  }
}

/** Writes encoded bytes to a target; throws what the target's write throws. */
async function writeTo (target: WriteTarget, data: string | Uint8Array): Promise<void> {
  switch (target.kind) {
    case 'file': atomicWriteSync(target.path, data, target.mode, target.durability); break
    case 'postgres': await writeRow(target, data); break
    default: throw new Error(`unknown write target ${JSON.stringify((target as { kind: unknown }).kind)}: this should not happen`)
  }
}

/** Encodes `task.value` (as `task.form` says) and writes it atomically and durably to `task.target`. */
export async function encodeAndWrite (task: WriteTask): Promise<EncodedWrite> {
  const start = performance.now()
  let plain: string | Uint8Array
  try {
    const bytes = await bytesOf(task)
    if (bytes instanceof Refused) return { data: undefined, result: { ok: false, stage: 'check', problem: bytes.problem } }
    plain = bytes
  } catch (err) {
    return { data: undefined, result: { ok: false, stage: 'encode', message: 'the encoder failed', cause: serialize(err) } }
  }
  // Only a store that asked (by sending what it last wrote) pays for the hash. It is taken before
  // compression and encryption: a fresh nonce makes every encrypted file differ, and an unchanged
  // value then skips the compressing too.
  const hash = task.previousHash === undefined && !task.hashOutput ? undefined : createHash('sha256').update(plain).digest('base64')
  if (hash !== undefined && hash === task.previousHash) {
    const refused = await refuseUnchanged(task.target)
    if (refused !== undefined) return { data: undefined, result: refused }
    return { data: plain, result: { ok: true, bytes: typeof plain === 'string' ? Buffer.byteLength(plain) : plain.byteLength, encodeMs: performance.now() - start, writeMs: 0, hash, skipped: true } }
  }
  let data: string | Uint8Array
  try {
    data = wrapBytes(task.codec, plain, { kind: 'file' })
  } catch (err) {
    return { data: undefined, result: { ok: false, stage: 'encode', message: 'compressing or encrypting the encoded bytes failed', cause: serialize(err) } }
  }
  const encoded = performance.now()
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
  try {
    await writeTo(task.target, data)
  } catch (err) {
    if (err instanceof FencedWrite) return { data: undefined, result: { ok: false, stage: 'fenced', message: 'the write was fenced', cause: serialize(err) } }
    if (task.target.kind === 'postgres') return { data: undefined, result: { ok: false, stage: 'write', message: `the write to ${task.target.describe} failed (nothing was committed, or the outcome is unknown: the next write rewrites the row)`, cause: serialize(err) } }
    if (err instanceof DirectorySyncError) {
      return { data, result: { ok: false, stage: 'dirsync', message: 'the file was renamed into place, but the directory fsync failed: durability unknown', cause: serialize(err.original) } }
    }
    return { data: undefined, result: { ok: false, stage: 'write', message: 'the atomic write failed', cause: serialize(err) } }
  }
  return {
    data,
    result: { ok: true, bytes, encodeMs: encoded - start, writeMs: performance.now() - encoded, hash, skipped: false }
  }
}

/** Piscina's entry: one write per call. */
export default async function write (task: WriteTask): Promise<WriteResult> {
  return (await encodeAndWrite(task)).result
}
