import type { Pool } from 'pg'
import type { PostgresConnection } from './protocol.js'

// One way to open a pg pool, for both threads (the main thread's lease and reads, each worker's
// writes); each keeps its own pools. pg is an optional peer dependency, imported on first use.

/** A bounded pg pool for `connection`; rejects saying how to install pg when it is missing. */
export async function createPool (connection: PostgresConnection): Promise<Pool> {
  let pg: typeof import('pg').default
  try {
    pg = (await import('pg')).default
  } catch (err) {
    throw new Error(`a PostgreSQL target needs the pg package: npm install pg (${(err as Error).message})`, { cause: err })
  }
  const pool = new pg.Pool({
    connectionString: connection.connectionString,
    host: connection.host,
    port: connection.port,
    database: connection.database,
    user: connection.user,
    password: connection.password,
    max: connection.poolSize,
    connectionTimeoutMillis: connection.connectTimeout,
    statement_timeout: connection.statementTimeout === 0 ? undefined : connection.statementTimeout,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true
  })
  // An idle connection the server drops (a restart) is removed by the pool; without a listener,
  // its 'error' event would kill the thread.
  pool.on('error', () => {})
  return pool
}
