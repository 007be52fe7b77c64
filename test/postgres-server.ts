import { after } from 'node:test'
import pg from 'pg'
import { createPostgres, findPostgresBin } from '../bench/postgres-server.js'

// A real PostgreSQL server for the tests (bench/postgres-server.ts), stopped when the test file
// ends. Never skipped: a missing binary fails with how to install it.

const INSTALL = 'PostgreSQL server binaries (initdb, postgres) were not found. Install them with `apt-get install -y postgresql` (Debian/Ubuntu), or set OFFLOAD_STORE_PG_BIN to the directory holding initdb and postgres.'

export interface TestServer {
  readonly port: number
  readonly connectionString: string
  /** A fresh client (ended by the caller). */
  client: () => Promise<pg.Client>
  /** Runs one query on a fresh connection. */
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<pg.QueryResult<R>>
  /** The JSON value in a Store's row `name` of `table` (undefined: no row). */
  rowOf: (name: string, table?: string) => Promise<unknown>
  /** Fast shutdown (SIGINT: clients are disconnected, nothing committed is lost). */
  stop: () => Promise<void>
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start: () => Promise<void>
}

/** Starts a PostgreSQL server for this test file; it is stopped when the file ends. */
export async function startServer (): Promise<TestServer> {
  const bin = findPostgresBin()
  if (bin === undefined) throw new Error(INSTALL)
  const server = await createPostgres(bin, ['max_connections=60'])
  // Stopped before its directory is removed, in one hook.
  after(async () => { await server.remove() })
  await server.start()
  const { port, connectionString, start, stop } = server
  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString })
    await c.connect()
    return c
  }
  const query: TestServer['query'] = async (sql, params) => {
    const c = await client()
    try {
      return await c.query(sql, params)
    } finally {
      await c.end()
    }
  }
  return {
    port,
    connectionString,
    client,
    query,
    rowOf: async (name, table = 'offload_store') => {
      const { rows } = await query<{ data: Buffer }>(`SELECT data FROM ${table} WHERE name = $1`, [name])
      return rows[0] === undefined ? undefined : JSON.parse(rows[0].data.toString('utf8'))
    },
    stop,
    start
  }
}
