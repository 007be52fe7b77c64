import { performance } from 'node:perf_hooks'
import type { SerializedError, WriteResult, WriteTask } from '../src/protocol.js'
import { atomicWriteSync, DirectorySyncError } from './atomic-write.js'
import { encode } from './encoders.js'

// Piscina's worker entry: one write per call. Failures are answered as data, not thrown, because a
// structured clone would strip the error's class and its `code`.

function serialize (err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) }
  const e = err as NodeJS.ErrnoException
  return { name: e.name, message: e.message, stack: e.stack, code: e.code, syscall: e.syscall, path: e.path, errno: e.errno }
}

/** Encodes `task.value` and writes it atomically and durably to `task.path`. */
export default async function write (task: WriteTask): Promise<WriteResult> {
  const start = performance.now()
  let data: string | Uint8Array
  try {
    data = await encode(task.codec, task.value)
  } catch (err) {
    return { ok: false, stage: 'encode', message: 'the encoder failed', cause: serialize(err) }
  }
  const encoded = performance.now()
  try {
    atomicWriteSync(task.path, data, task.mode, task.durability)
  } catch (err) {
    if (err instanceof DirectorySyncError) {
      return { ok: false, stage: 'dirsync', message: 'the file was renamed into place, but the directory fsync failed: durability unknown', cause: serialize(err.original) }
    }
    return { ok: false, stage: 'write', message: 'the atomic write failed', cause: serialize(err) }
  }
  return {
    ok: true,
    bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength,
    encodeMs: encoded - start,
    writeMs: performance.now() - encoded
  }
}
