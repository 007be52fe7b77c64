import { createHash } from 'node:crypto'
import type { Pool } from 'pg'
import { createPool } from '../src/postgres-pool.js'
import { confirmRowSql, writeRowSql } from '../src/postgres-sql.js'
import type { PostgresConnection, WriteResult, WriteTarget } from '../src/protocol.js'
import { serializeError } from './serialize-error.js'

// The worker's side of a PostgreSQL target: one bounded pool per server per thread, and the fenced
// writes. Every write is acknowledged only after its COMMIT returned.

type PostgresWriteTarget = Extract<WriteTarget, { kind: 'postgres' }>

/** Thrown when the lease's generation moved on: another owner took the store over. */
export class FencedWrite extends Error {
  override readonly name = 'FencedWrite'
  readonly code = 'ERR_STORE_FENCED'
}

const pools = new Map<string, Promise<Pool>>()

/** This thread's pool for `connection`, opened on first use; a failed import of pg is not kept. */
export async function poolFor (connection: PostgresConnection): Promise<Pool> {
  const key = JSON.stringify(connection)
  let pool = pools.get(key)
  if (pool === undefined) {
    pool = createPool(connection)
    pools.set(key, pool)
    // A failed import is not cached: installing pg later works without a restart.
    pool.catch(() => { pools.delete(key) })
  }
  return await pool
}

function fenced (target: PostgresWriteTarget): FencedWrite {
  return new FencedWrite(`the lease of ${JSON.stringify(target.key)} moved past generation ${target.generation}: another owner took this store over, so this write was refused and its data left untouched`)
}

/** A named statement for pg: `text`, and a name unique for it within PostgreSQL's 63 bytes. */
export function namedStatement (kind: string, text: string): { readonly name: string, readonly text: string } {
  return { name: `offload-store-${kind}-${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`, text }
}

/** The Store's write statement per table pair. */
const statements = new Map<string, { readonly name: string, readonly text: string }>()

// A named statement is parsed and planned once per connection instead of once per write: about a
// third less worker CPU per write (bench/pg-driver.ts; docs/postgres.md "Why pg").
function writeStatement (target: PostgresWriteTarget): { readonly name: string, readonly text: string } {
  const text = writeRowSql(target.tables)
  let statement = statements.get(text)
  if (statement === undefined) {
    statement = namedStatement('write', text)
    statements.set(text, statement)
  }
  return statement
}

/** Upserts a Store's row under its fence, in one autocommitted statement; throws {@link FencedWrite} when fenced. */
export async function writeRow (target: PostgresWriteTarget, data: string | Uint8Array): Promise<void> {
  const pool = await poolFor(target.connection)
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const result = await pool.query({ ...writeStatement(target), values: [target.key, target.generation, target.version, target.minorVersion, bytes] })
  if (result.rowCount !== 1) throw fenced(target)
}

/**
 * Whether a write whose bytes equal the last written ones may be acknowledged without writing:
 * always for a file (this process owns it); for PostgreSQL only once the server confirmed that the
 * lease is still at this owner's generation and the row was last written under it, so a stale
 * owner never gets an acknowledged save. Undefined: acknowledge; else the failure to answer.
 */
export async function refuseUnchanged (target: WriteTarget): Promise<Extract<WriteResult, { ok: false }> | undefined> {
  if (target.kind !== 'postgres') return undefined
  try {
    const pool = await poolFor(target.connection)
    const { rowCount } = await pool.query(confirmRowSql(target.tables), [target.key, target.generation])
    if (rowCount === 1) return undefined
    return { ok: false, stage: 'fenced', message: 'the unchanged write was refused', cause: serializeError(fenced(target)) }
  } catch (err) {
    return { ok: false, stage: 'write', message: `confirming the lease on ${target.describe} failed (the row is unchanged, but whether this store still owns it is unknown)`, cause: serializeError(err) }
  }
}
