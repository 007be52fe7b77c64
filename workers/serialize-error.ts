import type { SerializedError } from '../src/protocol.js'

/** Flattens an error to data: a structured clone would drop its class and its `code`. */
export function serializeError (err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) }
  const e = err as NodeJS.ErrnoException
  return { name: e.name, message: e.message, stack: e.stack, code: e.code, syscall: e.syscall, path: e.path, errno: e.errno }
}
