import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import diagnosticsChannel from 'node:diagnostics_channel'
import { join } from 'node:path'
import { type LeaseLostMessage, postgres, ShutdownRegistry, Store, StoreError, WriterPool } from '../src/index.js'
import { quiet, recordingLogger, tempDir } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'

// Started at the top level, so its stop hook belongs to the file, not to a hook.
const server: TestServer = await startServer()
const pool = new WriterPool({ maxThreads: 2 })
let n = 0
const register = new ShutdownRegistry().register

after(async () => { await pool.close() })

/** A store on the test server with a fresh name. */
function pgStore<T> (options: { name?: string, leaseMs?: number, lockTimeout?: number, statementTimeout?: number, connectionString?: string, retry?: false | { initialMs: number, maxMs: number } } = {}): Store<T> {
  const name = options.name ?? `store-${++n}`
  return new Store<T>({
    path: join('/nonexistent', `${name}-${++n}.json`),
    name,
    shutdownRegister: register,
    pool,
    logger: quiet,
    retry: options.retry ?? false,
    target: postgres({
      connectionString: options.connectionString ?? server.connectionString,
      leaseMs: options.leaseMs ?? 10_000,
      lockTimeout: options.lockTimeout ?? 0,
      statementTimeout: options.statementTimeout ?? 30_000
    })
  })
}

describe('Store on PostgreSQL', () => {
  test('save() resolves after COMMIT: another connection sees the row, and a new owner loads the value', async () => {
    const first = pgStore<{ greeting: string }>({ name: 'roundtrip' })
    assert.equal(await first.load(), undefined)
    await first.save({ greeting: 'hello' })
    const { rows } = await server.query<{ data: Buffer, generation: string }>('SELECT data, generation::text AS generation FROM offload_store WHERE name = $1', ['roundtrip'])
    assert.equal(rows.length, 1)
    assert.deepEqual(JSON.parse(rows[0]?.data.toString('utf8') ?? ''), { greeting: 'hello' })
    await first.close()
    const second = pgStore<{ greeting: string }>({ name: 'roundtrip' })
    assert.deepEqual(await second.load(), { greeting: 'hello' })
    await second.close()
  })

  test('a second open store in this process on the same name and server throws ERR_STORE_PATH_IN_USE at once, not after lockTimeout', async () => {
    const first = pgStore<number>({ name: 'claimed', lockTimeout: 30_000 })
    await first.save(1)
    // Thrown by the constructor: it never reaches the lease, where it would wait for lockTimeout.
    assert.throws(() => pgStore<number>({ name: 'claimed', lockTimeout: 30_000 }), (err: StoreError) =>
      err.code === 'ERR_STORE_PATH_IN_USE' && /"claimed"/.test(err.message) && /close\(\) it first/.test(err.message))
    await first.close()
    const second = pgStore<number>({ name: 'claimed', lockTimeout: 30_000 })
    assert.equal(await second.load(), 1)
    await second.close()
  })

  test('a lease taken over behind the owner\'s back is published on offload-store:lease:lost at the next renewal, before any write', async () => {
    const store = pgStore<number>({ name: 'lost-lease', leaseMs: 300 })
    await store.save(1)
    const lost = new Promise<LeaseLostMessage>((resolve) => {
      const onMessage = (message: unknown): void => {
        if ((message as LeaseLostMessage).store !== 'lost-lease') return
        diagnosticsChannel.unsubscribe('offload-store:lease:lost', onMessage)
        resolve(message as LeaseLostMessage)
      }
      diagnosticsChannel.subscribe('offload-store:lease:lost', onMessage)
    })
    // Another owner takes the lease over, as a replica would after a pause longer than leaseMs.
    await server.query("UPDATE offload_store_leases SET owner = 'elsewhere', generation = generation + 1 WHERE name = $1", ['lost-lease'])
    const message = await lost
    assert.match(message.path, /lost-lease/)
    assert.equal(message.error.code, 'ERR_STORE_FENCED')
    assert.match(message.generation, /^\d+$/)
    await assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_FENCED')
    await store.close()
  })

  test('moving a file\'s data into PostgreSQL: a file store and a PostgreSQL store on the same path are open together, and the row gets the file\'s value once', async () => {
    const path = join(tempDir(), 'settings.json')
    const seed = new Store<{ theme: string }>({ path, shutdownRegister: register, pool })
    await seed.save({ theme: 'dark' })
    await seed.close()
    const target = postgres({ connectionString: server.connectionString, lockTimeout: 0 })
    // What docs/postgres.md shows: import only when the database has no row yet.
    const move = async (): Promise<void> => {
      const file = new Store<{ theme: string }>({ path, shutdownRegister: register, pool })
      const db = new Store<{ theme: string }>({ path, name: 'moved-settings', shutdownRegister: register, pool, target })
      try {
        if ((await db.load()) === undefined) {
          const data = await file.load()
          if (data !== undefined) await db.save(data)
        }
      } finally {
        await Promise.all([file.close(), db.close()])
      }
    }
    await move()
    const { rows } = await server.query<{ data: Buffer }>('SELECT data FROM offload_store WHERE name = $1', ['moved-settings'])
    assert.deepEqual(JSON.parse(rows[0]?.data.toString('utf8') ?? ''), { theme: 'dark' })
    // A second run (another replica, a restart) finds the row and leaves it alone.
    await server.query("UPDATE offload_store SET data = convert_to('{\"theme\":\"light\"}', 'UTF8') WHERE name = $1", ['moved-settings'])
    await move()
    const again = await server.query<{ data: Buffer }>('SELECT data FROM offload_store WHERE name = $1', ['moved-settings'])
    assert.deepEqual(JSON.parse(again.rows[0]?.data.toString('utf8') ?? ''), { theme: 'light' })
  })

  test('remove() deletes the row under the fence', async () => {
    const store = pgStore<number>({ name: 'removed' })
    await store.save(1)
    await store.remove()
    assert.equal((await server.query('SELECT 1 FROM offload_store WHERE name = $1', ['removed'])).rowCount, 0)
    assert.equal(await store.load(), undefined)
    await store.close()
  })

  test('the main thread spends about as long per save as with a file (same value, same pool)', async () => {
    const value = { items: Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], on: i % 2 === 0 })) }
    const dir = tempDir()
    const file = new Store<typeof value>({ path: join(dir, 'cost.json'), shutdownRegister: register, pool, logger: quiet, skipUnchanged: false })
    const db = new Store<typeof value>({ path: join(dir, 'cost-pg.json'), name: 'cost', shutdownRegister: register, pool, logger: quiet, skipUnchanged: false, target: postgres({ connectionString: server.connectionString }) })
    const fileMs: number[] = []
    const dbMs: number[] = []
    // Interleaved, so both see the same machine load; the first rounds warm up both paths.
    for (let i = 0; i < 25; i++) {
      await file.save(value)
      await db.save(value)
      if (i < 5) continue
      fileMs.push(file.stats().lastWrite?.mainMs ?? NaN)
      dbMs.push(db.stats().lastWrite?.mainMs ?? NaN)
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
    const ratio = median(dbMs) / median(fileMs)
    console.log(`main-thread ms per save: file ${median(fileMs).toFixed(3)}, PostgreSQL ${median(dbMs).toFixed(3)} (ratio ${ratio.toFixed(2)})`)
    assert.ok(ratio < 3, `PostgreSQL main-thread cost ${median(dbMs)} ms vs file ${median(fileMs)} ms`)
    await file.close()
    await db.close()
  })

  test('a table marked with a newer schema version is refused, not rewritten', async () => {
    const target = postgres({ connectionString: server.connectionString, table: 'future', lockTimeout: 0 })
    await server.query('CREATE TABLE future (name text PRIMARY KEY, version integer, minor_version integer, data bytea NOT NULL, generation bigint NOT NULL, updated_at timestamptz NOT NULL)')
    await server.query("COMMENT ON TABLE future IS 'offload-store schema 99'")
    const store = new Store<number>({ path: '/nonexistent/future.json', name: 'future', shutdownRegister: register, pool, logger: quiet, retry: false, target })
    await assert.rejects(store.load(), (err: StoreError) => err.code === 'ERR_STORE_VERSION' && /schema 99/.test(err.message))
    await store.close()
  })
})

describe('PostgreSQL faults', () => {
  test('an unreachable server fails load() with ERR_STORE_READ naming host and database, never the password', async () => {
    const store = pgStore<number>({ name: 'unreachable', connectionString: `postgres://app:s3cret-pw@127.0.0.1:${server.port + 1}/appdb` })
    await assert.rejects(store.load(), (err: StoreError) => {
      assert.equal(err.code, 'ERR_STORE_READ')
      assert.match(err.message, /"appdb" at 127\.0\.0\.1:/)
      assert.doesNotMatch(err.message, /s3cret/)
      assert.equal(err.store, 'unreachable')
      return true
    })
    await assert.rejects(store.save(1), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && !err.message.includes('s3cret'))
    await store.close().catch(() => {})
  })

  test('a statement timeout rejects the save with ERR_STORE_WRITE, keeps the data, and the next save writes it', async () => {
    const store = pgStore<number>({ name: 'slow', statementTimeout: 300 })
    await store.save(1)
    const blocker = await server.client()
    await blocker.query('BEGIN')
    await blocker.query("SELECT 1 FROM offload_store WHERE name = 'slow' FOR UPDATE")
    await assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && (err.cause as { code?: string }).code === '57014')
    assert.equal(store.lastError?.name, 'StoreWriteError')
    await blocker.query('ROLLBACK')
    await blocker.end()
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    const { rows } = await server.query<{ data: Buffer }>("SELECT data FROM offload_store WHERE name = 'slow'")
    assert.equal(rows[0]?.data.toString(), '2')
    await store.close()
  })

  test('a server restart fails the save in flight; the kept data is retried and acknowledged once the server is back', async () => {
    const logger = recordingLogger()
    const store = new Store<number>({
      path: '/nonexistent/restart.json',
      name: 'restart',
      shutdownRegister: register,
      pool,
      logger,
      retry: { initialMs: 100, maxMs: 200 },
      target: postgres({ connectionString: server.connectionString, connectTimeout: 2000 })
    })
    await store.save(1)
    await server.stop()
    await assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_WRITE')
    await server.start()
    // The retry's success is the next write-end; saveNow() then has nothing left to write.
    await store.saveNow()
    const { rows } = await server.query<{ data: Buffer }>("SELECT data FROM offload_store WHERE name = 'restart'")
    assert.equal(rows[0]?.data.toString(), '2')
    assert.equal(store.lastError, undefined)
    await store.close()
  })
})
