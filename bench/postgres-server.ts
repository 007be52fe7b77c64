import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'

// A real PostgreSQL server for the bench and the tests: initdb in a temp dir, started on a free
// loopback port with the server's durable defaults (fsync and synchronous_commit on), stopped
// afterwards. The tests wrap it (test/postgres-server.ts) with their stop hook and restarts. A
// missing binary is reported, never skipped silently.

/** What the report and the JSON say when no server binary is found. */
export const POSTGRES_MISSING = 'PostgreSQL binaries not found (apt-get install postgresql)'

/** A running server for one bench run. */
export interface BenchPostgres {
  readonly connectionString: string
  /** The server's major version, for the report. */
  readonly version: string
  /** Fast shutdown (SIGINT), then removes its directory. */
  stop: () => Promise<void>
}

/**
 * The directory holding `initdb` and `postgres`: `binDir` (or `OFFLOAD_STORE_PG_BIN`) when given,
 * else the newest Debian install, else `pg_config --bindir`; undefined when none has them.
 */
export function findPostgresBin (binDir = process.env['OFFLOAD_STORE_PG_BIN']): string | undefined {
  const usable = (dir: string): boolean => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))
  // An explicit directory is the answer, or nothing: a bench told where to look must not measure another server.
  if (binDir !== undefined && binDir !== '') return usable(binDir) ? binDir : undefined
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : []
  for (const version of versions) {
    if (usable(join(root, version, 'bin'))) return join(root, version, 'bin')
  }
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  const dir = found.status === 0 ? found.stdout.trim() : ''
  return dir !== '' && usable(dir) ? dir : undefined
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

/** A server's data directory and port, made by {@link createPostgres}; started and stopped at will. */
export interface PostgresProcess {
  readonly port: number
  readonly connectionString: string
  /** Starts the server; resolves once it accepts connections. */
  start: () => Promise<void>
  /** Fast shutdown (SIGINT: clients are disconnected, nothing committed is lost); idempotent. */
  stop: () => Promise<void>
  /** Stops the server, then removes its directory. */
  remove: () => Promise<void>
}

/**
 * Runs initdb from `bin` in a new temp directory and picks a free loopback port; the server is not
 * started yet. `settings` are extra `-c name=value` server settings.
 */
export async function createPostgres (bin: string, settings: readonly string[] = []): Promise<PostgresProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'offload-store-pg-'))
  const data = join(dir, 'data')
  // initdb and postgres refuse to run as root: run them as nobody, who then owns the directory.
  const root = process.getuid?.() === 0
  const asUser = root ? { uid: 65534, gid: 65534 } : {}
  if (root) chownSync(dir, 65534, 65534)
  let child: ChildProcess | undefined
  let log = ''
  const stop = async (): Promise<void> => {
    const running = child
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGINT')
    await exited
  }
  const remove = async (): Promise<void> => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // --no-sync only skips flushing initdb's own files; the server itself runs with fsync on.
    const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...asUser, encoding: 'utf8' })
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`)
  } catch (err) {
    await remove()
    throw err
  }
  const port = await freePort()
  const connectionString = `postgres://postgres@127.0.0.1:${port}/postgres`
  const start = async (): Promise<void> => {
    const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...settings.flatMap((setting) => ['-c', setting])]
    const started = spawn(join(bin, 'postgres'), args, { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] })
    child = started
    started.stderr?.setEncoding('utf8').on('data', (chunk: string) => { log = (log + chunk).slice(-4000) })
    for (let i = 0; ; i++) {
      if (started.exitCode !== null) throw new Error(`postgres exited at start: ${log}`)
      const client = new pg.Client({ connectionString })
      try {
        await client.connect()
        await client.end()
        return
      } catch (err) {
        await client.end().catch(() => {})
        if (i >= 600) throw new Error(`postgres did not accept connections within 30 s: ${(err as Error).message}; ${log}`)
        await sleep(50)
      }
    }
  }
  return { port, connectionString, start, stop, remove }
}

/** Starts a server from `bin` (see {@link findPostgresBin}); resolves once it accepts connections. */
export async function startBenchPostgres (bin: string): Promise<BenchPostgres> {
  const server = await createPostgres(bin)
  try {
    await server.start()
    const client = new pg.Client({ connectionString: server.connectionString })
    await client.connect()
    try {
      const { rows } = await client.query<{ version: string }>("SELECT current_setting('server_version') AS version")
      return { connectionString: server.connectionString, version: rows[0]?.version ?? '?', stop: server.remove }
    } finally {
      await client.end()
    }
  } catch (err) {
    await server.remove()
    throw err
  }
}
