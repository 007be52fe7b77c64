import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after } from 'node:test'
import pg from 'pg'

// A real PostgreSQL server for the tests: initdb in a temp dir, started on a free loopback port,
// stopped when the test file ends. Never skipped: a missing binary fails with how to install it.

const INSTALL = 'PostgreSQL server binaries (initdb, postgres) were not found. Install them with `apt-get install -y postgresql` (Debian/Ubuntu), or set OFFLOAD_STORE_PG_BIN to the directory holding initdb and postgres.'

function binDir (): string {
  const fromEnv = process.env['OFFLOAD_STORE_PG_BIN']
  if (fromEnv !== undefined && existsSync(join(fromEnv, 'initdb'))) return fromEnv
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : []
  for (const version of versions) {
    const dir = join(root, version, 'bin')
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir
  }
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  const dir = found.status === 0 ? found.stdout.trim() : ''
  if (dir !== '' && existsSync(join(dir, 'initdb'))) return dir
  throw new Error(INSTALL)
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

/** A running server: its connection string, and stop/start for restarts mid-test. */
export interface TestServer {
  readonly port: number
  readonly connectionString: string
  /** A fresh client (ended by the caller). */
  client: () => Promise<pg.Client>
  /** Runs one query on a fresh connection. */
  query: <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<pg.QueryResult<R>>
  /** Fast shutdown (SIGINT: clients are disconnected, nothing committed is lost). */
  stop: () => Promise<void>
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start: () => Promise<void>
}

/** Starts a PostgreSQL server for this test file; it is stopped when the file ends. */
export async function startServer (): Promise<TestServer> {
  const bin = binDir()
  const dir = mkdtempSync(join(tmpdir(), 'offload-store-pg-'))
  const data = join(dir, 'data')
  // initdb and postgres refuse to run as root: run them as nobody, who then owns the directory.
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  if (process.getuid?.() === 0) chownSync(dir, 65534, 65534)
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...asUser, encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`)
  const port = await freePort()
  const connectionString = `postgres://postgres@127.0.0.1:${port}/postgres`
  let child: ChildProcess | undefined
  let log = ''

  const ready = async (): Promise<void> => {
    for (let i = 0; i < 600; i++) {
      if (child?.exitCode !== null) throw new Error(`postgres exited at start: ${log}`)
      const client = new pg.Client({ connectionString })
      try {
        await client.connect()
        await client.end()
        return
      } catch {
        await client.end().catch(() => {})
        await sleep(50)
      }
    }
    throw new Error(`postgres did not accept connections within 30 s: ${log}`)
  }
  const start = async (): Promise<void> => {
    child = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=60'], { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { log = (log + chunk).slice(-4000) })
    await ready()
  }
  const stop = async (): Promise<void> => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGINT')
    await exited
  }
  // Stopped before its directory is removed, in one hook.
  after(async () => { await stop(); rmSync(dir, { recursive: true, force: true }) })
  await start()
  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString })
    await c.connect()
    return c
  }
  return {
    port,
    connectionString,
    client,
    query: async (sql, params) => {
      const c = await client()
      try {
        return await c.query(sql, params)
      } finally {
        await c.end()
      }
    },
    stop,
    start
  }
}
