/** The subset of a pino logger a store uses: `(fields, message)` calls, structured, never concatenated. */
export interface Logger {
  /** A write failed or data could not be produced. */
  error: (fields: object, message: string) => void
  /** Something works but costs more than it should. */
  warn: (fields: object, message: string) => void
  /** Routine events. */
  debug: (fields: object, message: string) => void
}

function plain (value: unknown): unknown {
  if (!(value instanceof Error)) return value
  const e = value as NodeJS.ErrnoException
  return { type: e.name, message: e.message, code: e.code, stack: e.stack, cause: plain(e.cause) }
}

function line (level: string, fields: object, message: string): void {
  const out: Record<string, unknown> = { level, time: Date.now(), msg: message }
  for (const [key, value] of Object.entries(fields)) out[key] = plain(value)
  process.stderr.write(JSON.stringify(out) + '\n')
}

/** Writes error and warn lines to stderr as JSON (pino's shape); debug only with NODE_DEBUG=offload-store. */
export const stderrLogger: Logger = {
  error: (fields, message) => { line('error', fields, message) },
  warn: (fields, message) => { line('warn', fields, message) },
  debug: (fields, message) => {
    if (/\boffload-store\b/.test(process.env['NODE_DEBUG'] ?? '')) line('debug', fields, message)
  }
}
