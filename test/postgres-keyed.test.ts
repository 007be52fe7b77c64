import assert from 'node:assert/strict'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { describe, test } from 'node:test'
import { codecs, KeyedStore, type KeyedStoreOptions, postgres, ShutdownRegistry, type StoreError } from '../src/index.js'
import { quiet, tempDir } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'
import { type OwnerProcess, ownerProcess } from './postgres-owner-process.js'

// KeyedStore on a real PostgreSQL server started by the test: one row per entry, a save applies
// only the changed entries in one fenced transaction. Owners in other processes are real children
// (test/fixtures/postgres-keyed-owner.ts).

const server: TestServer = await startServer()
const dir = tempDir()
const register = new ShutdownRegistry().register
let n = 0

type Options = Partial<KeyedStoreOptions<unknown>> & { leaseMs?: number, lockTimeout?: number, connectTimeout?: number }

/** A KeyedStore on the test server; `name` is the store's rows' key. */
function pgKeyed<V = unknown> (name: string, options: Options = {}): KeyedStore<string, V> {
  const { leaseMs = 10_000, lockTimeout = 0, connectTimeout = 10_000, ...rest } = options
  return new KeyedStore<string, V>({
    path: join(dir, `${name}-${++n}.json`),
    name,
    shutdownRegister: register,
    logger: quiet,
    delayMs: 60_000,
    retry: false,
    target: postgres({ connectionString: server.connectionString, leaseMs, lockTimeout, connectTimeout }),
    ...rest
  } as KeyedStoreOptions<V>)
}

/** The store's rows as the server holds them, in the map's order. */
async function rowsOf (name: string): Promise<Array<[string, unknown]>> {
  const { rows } = await server.query<{ key: string, value: Buffer }>('SELECT key, value FROM offload_store_entries WHERE name = $1 ORDER BY position', [name])
  return rows.map((row) => [row.key, JSON.parse(row.value.toString('utf8'))])
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
// Noise from other processes only ever adds time: the least of several rounds is the cost itself.
const least = (xs: readonly number[]): number => Math.min(...xs)

describe('KeyedStore on PostgreSQL', () => {
  test('load() returns every acknowledged entry in the map\'s order, after deletes and a key deleted and set again', async () => {
    const first = pgKeyed('order')
    assert.equal((await first.load()).size, 0)
    first.set('a', 1).set('b', { nested: [1, 2] }).set('c', 'three')
    await first.saveNow()
    first.delete('b')
    first.set('d', null)
    first.delete('a')
    first.set('a', 'back') // deleted and set again: moves to the end, as in the Map
    first.set('c', 'updated') // an update keeps its place
    await first.saveNow()
    assert.deepEqual(await rowsOf('order'), [['c', 'updated'], ['d', null], ['a', 'back']])
    await first.close()
    const second = pgKeyed('order')
    assert.deepEqual([...(await second.load())], [['c', 'updated'], ['d', null], ['a', 'back']])
    await second.close()
  })

  test('a save of 1% of 66,000 entries writes 660 rows in one transaction, not 66,000, and costs the main thread a small fraction of encoding the state', async (t) => {
    const store = pgKeyed<{ id: number, name: string, on: boolean }>('large')
    await store.load()
    for (let i = 0; i < 66_000; i++) store.set(`key${i}`, { id: i, name: `entry ${i}`, on: i % 2 === 0 })
    await store.saveNow()
    const mainMs: number[] = []
    for (let round = 1; round <= 4; round++) {
      for (let i = 0; i < 660; i++) store.set(`key${i * 100}`, { id: i, name: `round ${round}`, on: true })
      await store.saveNow()
      mainMs.push(store.stats().lastWrite?.mainMs ?? NaN)
    }
    // Every row version carries the id of the transaction that wrote it: the untouched rows still
    // have the first save's, the 660 changed ones the last save's, all of them one transaction's.
    const { rows } = await server.query<{ rows: string }>('SELECT count(*)::text AS rows FROM offload_store_entries WHERE name = $1 GROUP BY xmin::text ORDER BY count(*)', ['large'])
    assert.deepEqual(rows.map((r) => Number(r.rows)), [660, 65_340])
    const start = performance.now()
    JSON.stringify(Object.fromEntries(store))
    const stringifyMs = performance.now() - start
    t.diagnostic(`rows written by the last save: 660 of 66,000; main-thread ms per save: median ${median(mainMs).toFixed(3)}, least ${least(mainMs).toFixed(3)} (JSON.stringify of the state: ${stringifyMs.toFixed(1)} ms)`)
    assert.ok(least(mainMs) < stringifyMs / 4, `a 1% save cost the main thread ${least(mainMs)} ms, JSON.stringify of the whole state ${stringifyMs} ms`)
    await store.close()
    const reloaded = pgKeyed<{ id: number, name: string }>('large')
    const entries = await reloaded.load()
    assert.equal(entries.size, 66_000)
    assert.equal(entries.get('key100')?.name, 'round 4')
    assert.equal(entries.get('key101')?.name, 'entry 101')
    await reloaded.close()
  })

  test('the main thread spends about as long per keyed save as with a file (same 1% change of the same state)', async (t) => {
    const file = new KeyedStore<string, unknown>({ path: join(dir, 'cost.json'), shutdownRegister: register, logger: quiet, delayMs: 60_000 })
    const db = pgKeyed('cost')
    await file.load()
    await db.load()
    for (let i = 0; i < 20_000; i++) {
      const value = { id: i, name: `entry ${i}`, tags: ['a', 'b'] }
      file.set(`key${i}`, value)
      db.set(`key${i}`, value)
    }
    await file.saveNow()
    await db.saveNow()
    const fileMs: number[] = []
    const dbMs: number[] = []
    // Interleaved, so both see the same machine load; the first round warms up both paths.
    for (let round = 0; round < 13; round++) {
      for (const [store, times] of [[file, fileMs], [db, dbMs]] as const) {
        for (let i = 0; i < 200; i++) store.set(`key${i * 100}`, { id: i, name: `round ${round}`, tags: ['c'] })
        await store.saveNow()
        if (round > 0) times.push(store.stats().lastWrite?.mainMs ?? NaN)
      }
    }
    const ratio = least(dbMs) / least(fileMs)
    t.diagnostic(`main-thread ms per save (200 of 20,000 entries): median file ${median(fileMs).toFixed(3)}, PostgreSQL ${median(dbMs).toFixed(3)}; least file ${least(fileMs).toFixed(3)}, PostgreSQL ${least(dbMs).toFixed(3)} (ratio ${ratio.toFixed(2)})`)
    assert.ok(ratio < 3, `PostgreSQL main-thread cost ${least(dbMs)} ms vs file ${least(fileMs)} ms (least of ${dbMs.length} rounds)`)
    await file.close()
    await db.close()
  })

  test('a save of deletes, updates and new keys applies them together in one transaction, new keys at the end in the order set', async () => {
    const store = pgKeyed('mixed')
    await store.load()
    store.set('a', 1).set('b', 2).set('c', 3).set('d', 4)
    await store.saveNow()
    store.set('e', 5)
    store.delete('b')
    store.set('c', 30)
    store.set('f', 6)
    store.delete('d')
    await store.saveNow()
    assert.deepEqual(await rowsOf('mixed'), [['a', 1], ['c', 30], ['e', 5], ['f', 6]])
    assert.deepEqual(await rowsOf('mixed'), [...store])
    // The three rows this save wrote carry one transaction's id; 'a' keeps the first save's.
    const { rows } = await server.query<{ keys: string[] }>("SELECT array_agg(key ORDER BY key) AS keys FROM offload_store_entries WHERE name = 'mixed' GROUP BY xmin::text ORDER BY count(*)")
    assert.deepEqual(rows.map((r) => r.keys), [['a'], ['c', 'e', 'f']])
    await store.close()
  })

  test('a change before load() throws ERR_STORE_STATE and writes nothing', async () => {
    const store = pgKeyed('early')
    assert.throws(() => store.set('a', 1), (err: StoreError) => err.code === 'ERR_STORE_STATE')
    assert.throws(() => store.delete('a'), (err: StoreError) => err.code === 'ERR_STORE_STATE')
    await store.close()
    assert.deepEqual(await rowsOf('early'), [])
  })

  test('options that do not apply to PostgreSQL are refused naming the store: journal, a compressed or encrypted codec', () => {
    assert.throws(() => pgKeyed('journaled', { journal: true }), (err: StoreError) => {
      assert.equal(err.code, 'ERR_STORE_INVALID_OPTION')
      assert.equal(err.store, 'journaled')
      assert.match(err.message, /journal does not apply to a PostgreSQL target/)
      return true
    })
    assert.throws(() => pgKeyed('gzipped', { codec: codecs.gzip(codecs.json()) }), (err: StoreError) => err.code === 'ERR_STORE_INVALID_OPTION' && err.store === 'gzipped' && /codec/.test(err.message))
  })

  test('a key PostgreSQL text cannot hold (NUL, a lone surrogate) is refused by set(), and the other changes are saved', async () => {
    const store = pgKeyed('keys')
    await store.load()
    store.set('fine', 1)
    assert.throws(() => store.set('nul\0key', 1), (err: StoreError) => err.code === 'ERR_STORE_INVALID_ARGUMENT' && err.store === 'keys')
    assert.throws(() => store.set('lone\uD800', 1), (err: StoreError) => err.code === 'ERR_STORE_INVALID_ARGUMENT')
    store.set('pair \uD83D\uDE00', 2) // a surrogate pair is a character like any other
    await store.saveNow()
    assert.deepEqual(await rowsOf('keys'), [['fine', 1], ['pair \uD83D\uDE00', 2]])
    await store.close()
  })

  test('a row changed behind the store\'s back into something that is not one JSON value fails load() with ERR_STORE_DECODE, and no key is added or lost', async () => {
    const store = pgKeyed('tampered')
    await store.load()
    store.set('a', 1).set('b', 2)
    await store.saveNow()
    await store.close()
    await server.query("UPDATE offload_store_entries SET value = convert_to('1,\"injected\":true', 'UTF8') WHERE name = 'tampered' AND key = 'a'")
    const again = pgKeyed('tampered')
    await assert.rejects(again.load(), (err: StoreError) => err.code === 'ERR_STORE_DECODE' && err.store === 'tampered' && /"a"/.test(err.message))
    await again.close()
    assert.equal((await server.query("SELECT 1 FROM offload_store_entries WHERE name = 'tampered'")).rowCount, 2)
  })
})

describe('KeyedStore on PostgreSQL: fencing and faults', () => {
  /** A child process owning the keyed store `name`, driven by line commands. */
  function owner (name: string, leaseMs: number): OwnerProcess<{ ok: boolean, size?: number, code?: string }> {
    return ownerProcess('postgres-keyed-owner.js', [server.connectionString, name, String(leaseMs), dir])
  }

  test('hand-over: close() in one process releases the lease, and another takes it without waiting, with every acknowledged change', async () => {
    const a = owner('handover', 10_000)
    assert.deepEqual(await a.send('load'), { ok: true, size: 0 })
    for (let v = 1; v <= 5; v++) {
      assert.equal((await a.send(`set k${v} {"v":${v}}`)).ok, true)
      assert.equal((await a.send('save')).ok, true)
    }
    assert.equal((await a.send('close')).ok, true)
    // lockTimeout 0: taking the lease must not wait for the 10 s expiry.
    const b = pgKeyed<{ v: number }>('handover')
    assert.deepEqual([...(await b.load())], [1, 2, 3, 4, 5].map((v) => [`k${v}`, { v }]))
    b.set('k6', { v: 6 })
    await b.saveNow()
    await b.close()
  })

  test('a paused old owner that wakes up is fenced with ERR_STORE_FENCED, and the new owner\'s rows are untouched', async () => {
    const a = owner('paused', 300)
    await a.send('load')
    await a.send('set shared "a1"')
    assert.equal((await a.send('save')).ok, true)
    a.proc.kill('SIGSTOP')
    try {
      const b = pgKeyed<string>('paused', { lockTimeout: 20_000 })
      assert.deepEqual([...(await b.load())], [['shared', 'a1']])
      b.set('shared', 'b1').set('mine', 'b1')
      await b.saveNow()
      a.proc.kill('SIGCONT')
      await a.send('set shared "a2"')
      await a.send('set stale "a2"')
      assert.deepEqual(await a.send('save'), { ok: false, code: 'ERR_STORE_FENCED' })
      assert.deepEqual(await rowsOf('paused'), [['shared', 'b1'], ['mine', 'b1']])
      b.set('mine', 'b2')
      await b.saveNow()
      assert.deepEqual(await rowsOf('paused'), [['shared', 'b1'], ['mine', 'b2']])
      await b.close()
    } finally {
      a.proc.kill('SIGCONT')
    }
  })

  test('the transaction itself checks the generation: a take-over the owner has not noticed yet rolls its whole save back with ERR_STORE_FENCED', async () => {
    const a = pgKeyed<string>('unnoticed')
    await a.load()
    a.set('x', 'a1')
    await a.saveNow()
    // Another owner takes the lease between renewals (every 3.3 s at the default leaseMs) and writes.
    await server.query("UPDATE offload_store_leases SET owner = 'elsewhere', generation = generation + 1 WHERE name = 'unnoticed'")
    await server.query("UPDATE offload_store_entries SET value = convert_to('\"b1\"', 'UTF8'), generation = generation + 1 WHERE name = 'unnoticed'")
    a.set('x', 'a2').set('y', 'a2')
    a.delete('x')
    await assert.rejects(a.saveNow(), (err: StoreError) => err.code === 'ERR_STORE_FENCED' && err.store === 'unnoticed')
    assert.deepEqual(await rowsOf('unnoticed'), [['x', 'b1']])
    // Fenced for good: the next save is refused before it reaches the server.
    a.set('z', 'a3')
    await assert.rejects(a.saveNow(), (err: StoreError) => err.code === 'ERR_STORE_FENCED')
    assert.deepEqual(await rowsOf('unnoticed'), [['x', 'b1']])
    await a.close().catch(() => {})
  })

  test('a save that moves a key (deleted and set again) is fenced as a whole too: ERR_STORE_FENCED, and no row is changed', async () => {
    const a = pgKeyed<string>('moved')
    await a.load()
    a.set('x', 'a1').set('w', 'a1')
    await a.saveNow()
    await server.query("UPDATE offload_store_leases SET owner = 'elsewhere', generation = generation + 1 WHERE name = 'moved'")
    a.delete('x')
    a.set('x', 'a2')
    a.delete('w')
    a.set('y', 'a2')
    await assert.rejects(a.saveNow(), (err: StoreError) => err.code === 'ERR_STORE_FENCED' && err.store === 'moved')
    assert.deepEqual(await rowsOf('moved'), [['x', 'a1'], ['w', 'a1']])
    await a.close().catch(() => {})
  })

  test('an unreachable server fails load() with ERR_STORE_READ naming host and database, never the password', async () => {
    const store = new KeyedStore<string, number>({
      path: join(dir, 'unreachable.json'),
      name: 'unreachable',
      shutdownRegister: register,
      logger: quiet,
      target: postgres({ connectionString: `postgres://app:s3cret-pw@127.0.0.1:${server.port + 1}/appdb`, lockTimeout: 0 })
    })
    await assert.rejects(store.load(), (err: StoreError) => {
      assert.equal(err.code, 'ERR_STORE_READ')
      assert.equal(err.store, 'unreachable')
      assert.match(err.message, /"appdb" at 127\.0\.0\.1:/)
      assert.doesNotMatch(err.message, /s3cret/)
      return true
    })
    assert.throws(() => store.set('a', 1), (err: StoreError) => err.code === 'ERR_STORE_STATE')
    await store.close()
  })

  test('a server restart in the middle of a save\'s transaction rolls it back; its changes are kept and retried, and the rows end up exactly as acknowledged', async () => {
    // Prepared transactions (the blocker below) are off by default, and turning them on takes a restart.
    await server.query('ALTER SYSTEM SET max_prepared_transactions = 2')
    await server.stop()
    await server.start()
    // A backoff longer than the test: the kept changes wait for saveNow(), after the rows are checked.
    const store = pgKeyed<number>('restart', { retry: { initialMs: 30_000, maxMs: 30_000 }, connectTimeout: 2000 })
    await store.load()
    for (let i = 0; i < 100; i++) store.set(`k${i}`, i)
    await store.saveNow()
    // One of the rows is locked by a prepared transaction, so the save waits inside its transaction
    // until the server goes down under it. Not by a session: a fast shutdown ends sessions in no set
    // order, and a blocking session ended first would release the row, letting the save commit
    // before its own session is ended. A prepared transaction belongs to no session; it outlives the
    // restart and releases the row only when rolled back below.
    const blocker = await server.client()
    await blocker.query('BEGIN')
    await blocker.query("SELECT 1 FROM offload_store_entries WHERE name = 'restart' AND key = 'k5' FOR UPDATE")
    await blocker.query("PREPARE TRANSACTION 'restart-blocker'")
    await blocker.end()
    try {
      for (let i = 0; i < 10; i++) store.set(`k${i}`, i + 1000)
      store.delete('k99')
      store.set('new', -1)
      // The worker answers the failure itself (its thread survives the dropped connection).
      const saving = assert.rejects(store.saveNow(), (err: StoreError) => err.code === 'ERR_STORE_WRITE' && err.store === 'restart' && /rolled back/.test(err.message))
      // The server's own view: the save's session is waiting for the row, inside its statement.
      for (;;) {
        const { rowCount } = await server.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%offload_store_entries%' AND pid <> pg_backend_pid()")
        if (rowCount === 1) break
        await new Promise((resolve) => setImmediate(resolve))
      }
      await server.stop()
      await saving
      assert.equal(store.lastError?.name, 'StoreWriteError')
      await server.start()
    } finally {
      await server.query("ROLLBACK PREPARED 'restart-blocker'").catch(() => {})
    }
    // Nothing of the rolled-back save is there: k99 is still in the rows until the retry.
    assert.equal((await rowsOf('restart')).length, 100)
    assert.deepEqual((await rowsOf('restart')).at(-1), ['k99', 99])
    await store.saveNow()
    assert.equal(store.lastError, undefined)
    const expected = [...store]
    assert.equal(expected.length, 100)
    assert.deepEqual(await rowsOf('restart'), expected)
    await store.close()
  })
})
