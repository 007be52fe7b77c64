import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { postgres, ShutdownRegistry, Store, type StoreError, StoreFlushError, WriterPool } from '../src/index.js'
import { quiet, tempDir } from './helpers.js'
import { isRoot, mountTmpfs } from './rel-helpers.js'
import { type OwnerProcess, ownerProcess } from './postgres-owner-process.js'
import { startServer, type TestServer } from './postgres-server.js'

// Faults against a real server, the fencing holes around skipped writes, and the lease as the only
// ownership of a PostgreSQL store. Owners in other processes are test/fixtures/postgres-owner.ts.

const server: TestServer = await startServer()
const pool = new WriterPool({ maxThreads: 1 })
after(async () => { await pool.close() })
const register = new ShutdownRegistry().register
let n = 0
// Made here, not in a test: removed when the file ends, after the test's own unmount.
const mounts = tempDir()

interface Answer { readonly ok: boolean, readonly value?: unknown, readonly code?: string }

/** A child process owning the store `name` (at `path`, when given), driven by line commands. */
function owner (name: string, leaseMs: number, path?: string): OwnerProcess<Answer> {
  return ownerProcess<Answer>('postgres-owner.js', [server.connectionString, name, String(leaseMs), ...(path === undefined ? [] : [path])])
}

interface Options {
  readonly name: string
  readonly path?: string
  readonly connectionString?: string
  readonly table?: string
  readonly leaseMs?: number
  readonly lockTimeout?: number
  readonly fileLockTimeout?: number
  readonly shutdownRegister?: ShutdownRegistry['register']
}

function pgStore<T> (options: Options): Store<T> {
  return new Store<T>({
    path: options.path ?? `/nonexistent/${options.name}-${++n}.json`,
    name: options.name,
    shutdownRegister: options.shutdownRegister ?? register,
    pool,
    logger: quiet,
    retry: false,
    ...(options.fileLockTimeout === undefined ? {} : { lockTimeout: options.fileLockTimeout }),
    target: postgres({
      connectionString: options.connectionString ?? server.connectionString,
      ...(options.table === undefined ? {} : { table: options.table }),
      leaseMs: options.leaseMs ?? 10_000,
      lockTimeout: options.lockTimeout ?? 0
    })
  })
}

/** Resolves with the pid of the backend running a store's write once it waits (on a lock, or in COMMIT for a standby). */
async function waitingWriter (waitEventType: 'Lock' | 'SyncRep'): Promise<number> {
  const condition = waitEventType === 'Lock' ? "wait_event_type = 'Lock'" : "wait_event = 'SyncRep'"
  for (;;) {
    const { rows } = await server.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE ${condition} AND query LIKE '%INSERT INTO%offload_store%' AND pid <> pg_backend_pid()`)
    if (rows[0] !== undefined) return rows[0].pid
    await sleep(10)
  }
}

/** Resolves once a reloaded synchronous_standby_names holds commits: a probe's COMMIT (into table commit_probe) is seen waiting, then ended. */
async function commitsWait (): Promise<void> {
  for (;;) {
    const probe = await server.client()
    probe.on('error', () => {})
    const pid = (await probe.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    const probed = { done: false }
    const insert = probe.query('INSERT INTO commit_probe VALUES (now())').then(() => { probed.done = true }, () => { probed.done = true })
    let waiting = false
    while (!probed.done && !waiting) {
      waiting = (await server.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'", [pid])).rowCount === 1
      if (!waiting) await sleep(10)
    }
    if (waiting) await server.query('SELECT pg_terminate_backend($1)', [pid])
    await insert
    await probe.end().catch(() => {})
    if (waiting) return
  }
}

const causeCode = (err: StoreError): unknown => (err.cause as { code?: unknown } | undefined)?.code

describe('A stale owner never gets an acknowledged save', () => {
  test('a save whose bytes equal the last written ones is refused with ERR_STORE_FENCED once another process took the lease over', async () => {
    // A long lease: no renewal runs during the test, so only the write itself can notice the take-over.
    const a = pgStore<string>({ name: 'unchanged-after-takeover', leaseMs: 60_000 })
    await a.save('a1')
    // The lease runs out (its renewals did not reach the server), and another process takes it over.
    await server.query("UPDATE offload_store_leases SET expires_at = '-infinity' WHERE name = 'unchanged-after-takeover'")
    const b = owner('unchanged-after-takeover', 10_000)
    assert.deepEqual(await b.send('load'), { ok: true, value: 'a1' })
    assert.equal((await b.send('save "b1"')).ok, true)
    await assert.rejects(a.save('a1'), (err: StoreError) => err.code === 'ERR_STORE_FENCED')
    assert.equal(await server.rowOf('unchanged-after-takeover'), 'b1')
    assert.equal(a.stats().unchanged, 0)
    await a.close().catch(() => {})
    await b.send('close')
  })

  test('an unchanged save while the lease is still held is acknowledged without rewriting the row', async () => {
    const a = pgStore<string>({ name: 'unchanged-owned' })
    await a.save('x')
    const before = await server.query<{ updated: string }>("SELECT updated_at::text AS updated FROM offload_store WHERE name = 'unchanged-owned'")
    await a.save('x')
    const later = await server.query<{ updated: string }>("SELECT updated_at::text AS updated FROM offload_store WHERE name = 'unchanged-owned'")
    assert.equal(later.rows[0]?.updated, before.rows[0]?.updated)
    assert.equal(a.stats().unchanged, 1)
    await a.close()
  })
})

describe('With a PostgreSQL target the lease is the ownership, not a file lock', () => {
  test('a store whose path lies under a missing directory, or under a regular file, loads and saves and creates nothing on disk', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'a-file'), '')
    const underFile = pgStore<number>({ name: 'no-dir-1', path: join(dir, 'a-file', 'sub', 'store.json') })
    const missing = pgStore<number>({ name: 'no-dir-2', path: join(dir, 'missing', 'deep', 'store.json') })
    for (const store of [underFile, missing]) {
      assert.equal(await store.load(), undefined)
      await store.save(1)
      await store.close()
    }
    assert.equal(await server.rowOf('no-dir-1'), 1)
    assert.equal(await server.rowOf('no-dir-2'), 1)
    assert.deepEqual(readdirSync(dir), ['a-file'])
  })

  test('a store whose path lies in a directory its process may not write (read-only) loads and saves, and writes nothing there', async () => {
    let readOnly: string
    if (isRoot) {
      // Root writes through permission bits: a read-only file system refuses it too (EROFS).
      readOnly = mountTmpfs(mounts, 'read-only', '64k')
      const remount = spawnSync('mount', ['-o', 'remount,ro', readOnly], { encoding: 'utf8' })
      assert.equal(remount.status, 0, remount.stderr)
    } else {
      readOnly = join(mounts, 'read-only')
      mkdirSync(readOnly, { mode: 0o555 })
    }
    const store = pgStore<number>({ name: 'read-only-dir', path: join(readOnly, 'store.json') })
    assert.equal(await store.load(), undefined)
    await store.save(5)
    await store.close()
    assert.equal(await server.rowOf('read-only-dir'), 5)
    assert.deepEqual(readdirSync(readOnly), [])
  })

  test('two processes with the same path contend on the lease only: other names both write, the same name fails with ERR_STORE_LOCKED naming the lease holder', async () => {
    const dir = tempDir()
    const path = join(dir, 'shared.json')
    const a = owner('machine-a', 10_000, path)
    assert.equal((await a.send('save 1')).ok, true)
    // The file lock would have made this wait for the other process and fail after 200 ms.
    const b = pgStore<number>({ name: 'machine-b', path, fileLockTimeout: 200 })
    await b.save(2)
    await b.close()
    const c = pgStore<number>({ name: 'machine-a', path, fileLockTimeout: 200, lockTimeout: 200 })
    await assert.rejects(c.save(3), (err: StoreError) => {
      assert.equal(err.code, 'ERR_STORE_LOCKED')
      assert.match(err.message, new RegExp(`:${a.proc.pid ?? 0}:[0-9a-f]+ holds the lease`))
      return true
    })
    await c.close().catch(() => {})
    assert.equal(await server.rowOf('machine-a'), 1)
    assert.equal(await server.rowOf('machine-b'), 2)
    assert.equal(existsSync(join(dir, '.shared.json.lock')), false)
    await a.send('close')
  })
})

describe('PostgreSQL faults', () => {
  test('a connection dropped while the write waits to commit rejects the save with ERR_STORE_WRITE; the kept data is rewritten and the row ends at the latest acknowledged state', async () => {
    const store = pgStore<number>({ name: 'dropped' })
    await store.save(1)
    const blocker = await server.client()
    await blocker.query('BEGIN')
    await blocker.query("SELECT 1 FROM offload_store WHERE name = 'dropped' FOR UPDATE")
    const rejected = assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && causeCode(err) === '57P01')
    await server.query('SELECT pg_terminate_backend($1)', [await waitingWriter('Lock')])
    await rejected
    assert.equal(store.lastError?.name, 'StoreWriteError')
    await blocker.query('ROLLBACK')
    await blocker.end()
    assert.equal(await server.rowOf('dropped'), 1)
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    assert.equal(await server.rowOf('dropped'), 2)
    await store.save(3)
    assert.equal(await server.rowOf('dropped'), 3)
    await store.close()
  })

  test('a connection dropped during COMMIT (committed here, never acknowledged) rejects the save with ERR_STORE_WRITE; the retry rewrites the row and it ends at the latest acknowledged state', async () => {
    const store = pgStore<number>({ name: 'commit-lost' })
    await store.save(1)
    await server.query('CREATE TABLE commit_probe (at timestamptz)')
    // Every COMMIT that writes now waits for a synchronous standby that never comes: the write is
    // durable on this server, but its acknowledgement is held, as when a connection dies in COMMIT.
    await server.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    await server.query('SELECT pg_reload_conf()')
    try {
      await commitsWait()
      // The server says nothing before it closes the socket: the cause is pg's 'Connection terminated'.
      const rejected = assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && /outcome is unknown/.test(err.message))
      await server.query('SELECT pg_terminate_backend($1)', [await waitingWriter('SyncRep')])
      await rejected
    } finally {
      await server.query('ALTER SYSTEM RESET synchronous_standby_names')
      await server.query('SELECT pg_reload_conf()')
    }
    // The outcome the store could not know: the row was committed.
    assert.equal(await server.rowOf('commit-lost'), 2)
    assert.equal(store.lastError?.name, 'StoreWriteError')
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    assert.equal(await server.rowOf('commit-lost'), 2)
    await store.save(3)
    assert.equal(await server.rowOf('commit-lost'), 3)
    await store.close()
  })

  test('a role without INSERT or UPDATE on the rows fails the save with ERR_STORE_WRITE and SQLSTATE 42501 on its cause; the kept data is written after GRANT', async () => {
    // The tables exist already (made by the tests above); the role may read them and hold a lease.
    await server.query('CREATE ROLE limited LOGIN')
    await server.query('GRANT SELECT ON offload_store TO limited')
    await server.query('GRANT SELECT, INSERT, UPDATE ON offload_store_leases TO limited')
    const store = pgStore<number>({ name: 'limited', connectionString: server.connectionString.replace('postgres@', 'limited@') })
    assert.equal(await store.load(), undefined)
    await assert.rejects(store.save(1), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && causeCode(err) === '42501')
    assert.equal(store.lastError?.name, 'StoreWriteError')
    await server.query('GRANT INSERT, UPDATE ON offload_store TO limited')
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    assert.equal(await server.rowOf('limited'), 1)
    await store.close()
  })

  test('a disk-full error from the server fails the save with ERR_STORE_WRITE and SQLSTATE 53100; the kept data is written once the server has room', async () => {
    const store = pgStore<number>({ name: 'full' })
    await store.save(1)
    await server.query(`CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$`)
    await server.query("CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON offload_store FOR EACH ROW WHEN (NEW.name = 'full') EXECUTE FUNCTION disk_is_full()")
    try {
      await assert.rejects(store.save(2), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && causeCode(err) === '53100')
      assert.equal(store.lastError?.name, 'StoreWriteError')
      assert.equal(await server.rowOf('full'), 1)
    } finally {
      await server.query('DROP TRIGGER full_disk ON offload_store')
    }
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    assert.equal(await server.rowOf('full'), 2)
    await store.close()
  })

  test('an unmarked table of another layout is refused with ERR_STORE_VERSION naming what differs, and is left untouched', async () => {
    await server.query('CREATE TABLE legacy (name text PRIMARY KEY, payload jsonb NOT NULL)')
    await server.query('INSERT INTO legacy VALUES ($1, $2)', ['old', '{"kept":true}'])
    const store = pgStore<number>({ name: 'old', table: 'legacy' })
    await assert.rejects(store.load(), (err: StoreError) => err.code === 'ERR_STORE_VERSION' && /legacy/.test(err.message) && /data bytea/.test(err.message))
    await assert.rejects(store.save(1), (err: StoreError) => err.code === 'ERR_STORE_VERSION')
    await store.close().catch(() => {})
    const { rows } = await server.query<{ comment: string | null, payload: unknown }>("SELECT obj_description('legacy'::regclass, 'pg_class') AS comment, payload FROM legacy WHERE name = 'old'")
    assert.deepEqual(rows, [{ comment: null, payload: { kept: true } }])
  })

  test('an unmarked table with this layout (made by hand from the documented statements) is used as it is', async () => {
    await server.query('CREATE TABLE by_hand (name text PRIMARY KEY, version integer, minor_version integer, data bytea NOT NULL, generation bigint NOT NULL, updated_at timestamptz NOT NULL)')
    await server.query('CREATE TABLE by_hand_leases (name text PRIMARY KEY, owner text NOT NULL, generation bigint NOT NULL, expires_at timestamptz NOT NULL)')
    const store = pgStore<number>({ name: 'hand', table: 'by_hand' })
    assert.equal(await store.load(), undefined)
    await store.save(7)
    assert.equal(await server.rowOf('hand', 'by_hand'), 7)
    await store.close()
  })
})

describe('Shutdown with the server down', () => {
  test('the shutdown flush reports each PostgreSQL store: the one with unsaved data failed with ERR_STORE_WRITE, the others finished, and the data is kept', async () => {
    const registry = new ShutdownRegistry()
    const pending = pgStore<number>({ name: 'shutdown-pending', shutdownRegister: registry.register })
    const clean = pgStore<number>({ name: 'shutdown-clean', shutdownRegister: registry.register })
    await pending.save(1)
    await clean.save(1)
    pending.delaySave(() => 2, 60_000)
    await server.stop()
    try {
      await assert.rejects(registry.flush({ timeoutMs: 20_000 }), (err: unknown) => {
        assert.ok(err instanceof StoreFlushError)
        assert.deepEqual(err.report.finished, ['shutdown-clean'])
        assert.deepEqual(err.report.unfinished, [])
        assert.deepEqual(err.report.failed.map((f) => [f.store, (f.error as StoreError).code]), [['shutdown-pending', 'ERR_STORE_WRITE']])
        assert.match(err.message, /shutdown-pending \(ERR_STORE_WRITE\)/)
        return true
      })
    } finally {
      await server.start()
    }
    await pending.saveNow()
    assert.equal(await server.rowOf('shutdown-pending'), 2)
    await pending.close()
    await clean.close()
  })
})
