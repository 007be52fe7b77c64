import type { Pool } from 'pg'
import { createPool } from '../src/postgres-pool.js'
import { writeRowSql } from '../src/postgres-sql.js'
import type { PostgresConnection, WriteTarget } from '../src/protocol.js'

// The worker's side of a PostgreSQL target: one bounded pool per server per thread, and the fenced
// writes. Every write is acknowledged only after its COMMIT returned.

type PostgresWriteTarget = Extract<WriteTarget, { kind: 'postgres' }>

/** Thrown when the lease's generation moved on: another owner took the store over. */
export class FencedWrite extends Error {
  override readonly name = 'FencedWrite'
  readonly code = 'ERR_STORE_FENCED'
}

const pools = new Map<string, Promise<Pool>>()

async function poolFor (connection: PostgresConnection): Promise<Pool> {
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

/** Upserts a Store's row under its fence, in one autocommitted statement; throws {@link FencedWrite} when fenced. */
export async function writeRow (target: PostgresWriteTarget, data: string | Uint8Array): Promise<void> {
  const pool = await poolFor(target.connection)
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const result = await pool.query(writeRowSql(target.tables), [target.key, target.generation, target.version, target.minorVersion, bytes])
  if (result.rowCount !== 1) throw fenced(target)
}
