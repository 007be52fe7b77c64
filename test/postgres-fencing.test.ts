import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { postgres, ShutdownRegistry, Store, type StoreError, WriterPool } from '../src/index.js'
import { type OwnerProcess, ownerProcess } from './postgres-owner-process.js'
import { quiet } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'

// Ownership across processes: each owner here is a real child process (test/fixtures/postgres-owner.ts)
// or this one, sharing one real server.

const server: TestServer = await startServer()
const pool = new WriterPool({ maxThreads: 1 })
after(async () => { await pool.close() })
const register = new ShutdownRegistry().register
let n = 0

interface Answer { readonly ok: boolean, readonly value?: unknown, readonly code?: string }

/** A child process owning the store `name`, driven by line commands. */
function owner (name: string, leaseMs: number): OwnerProcess<Answer> {
  return ownerProcess<Answer>('postgres-owner.js', [server.connectionString, name, String(leaseMs)])
}

function here<T> (name: string, lockTimeout: number): Store<T> {
  return new Store<T>({
    path: `/nonexistent/${name}-${++n}.json`,
    name,
    shutdownRegister: register,
    pool,
    logger: quiet,
    retry: false,
    target: postgres({ connectionString: server.connectionString, lockTimeout })
  })
}

describe('PostgreSQL fencing across processes', () => {
  test('hand-over: close() in one process releases the lease, and another takes it without waiting, with every acknowledged save', async () => {
    const a = owner('handover', 10_000)
    assert.deepEqual(await a.send('load'), { ok: true })
    for (let v = 1; v <= 5; v++) assert.equal((await a.send(`save {"v":${v}}`)).ok, true)
    assert.equal((await a.send('close')).ok, true)
    // lockTimeout 0: taking the lease must not wait for the 10 s expiry.
    const b = here<{ v: number }>('handover', 0)
    assert.deepEqual(await b.load(), { v: 5 })
    await b.save({ v: 6 })
    await b.close()
  })

  test('a paused old owner that wakes up is fenced with ERR_STORE_FENCED, and the new owner\'s data is kept', async () => {
    const a = owner('paused', 300)
    await a.send('load')
    assert.equal((await a.send('save "a1"')).ok, true)
    a.proc.kill('SIGSTOP')
    try {
      const b = here<string>('paused', 20_000)
      assert.equal(await b.load(), 'a1')
      await b.save('b1')
      a.proc.kill('SIGCONT')
      assert.deepEqual(await a.send('save "a2"'), { ok: false, code: 'ERR_STORE_FENCED' })
      assert.deepEqual(await a.send('save "a3"'), { ok: false, code: 'ERR_STORE_FENCED' })
      assert.equal(await server.rowOf('paused'), 'b1')
      await b.save('b2')
      assert.equal(await server.rowOf('paused'), 'b2')
      await b.close()
    } finally {
      a.proc.kill('SIGCONT')
    }
  })

  test('the write itself checks the generation: a take-over the owner has not noticed yet refuses its write with ERR_STORE_FENCED', async () => {
    const a = here<string>('unnoticed', 0)
    await a.save('a1')
    // Another owner takes the lease between renewals (every 3.3 s at the default leaseMs) and writes.
    await server.query("UPDATE offload_store_leases SET owner = 'elsewhere', generation = generation + 1 WHERE name = 'unnoticed'")
    await server.query("UPDATE offload_store SET data = convert_to('\"b1\"', 'UTF8'), generation = generation + 1 WHERE name = 'unnoticed'")
    await assert.rejects(a.save('a2'), (err: StoreError) => err.code === 'ERR_STORE_FENCED' && /refused/.test(err.message))
    assert.equal(await server.rowOf('unnoticed'), 'b1')
    // Fenced for good: the next save is refused before it reaches the server.
    await assert.rejects(a.save('a3'), (err: StoreError) => err.code === 'ERR_STORE_FENCED')
    assert.equal(await server.rowOf('unnoticed'), 'b1')
    await a.close().catch(() => {})
  })

  test('a killed owner\'s store is taken over once its lease expires, with its last acknowledged save', async () => {
    const a = owner('killed', 300)
    await a.send('load')
    for (let v = 1; v <= 3; v++) assert.equal((await a.send(`save ${v}`)).ok, true)
    const exited = new Promise((resolve) => a.proc.once('exit', resolve))
    a.proc.kill('SIGKILL')
    await exited
    const b = here<number>('killed', 20_000)
    assert.equal(await b.load(), 3)
    await b.close()
  })

  test('while another process holds the lease, taking it fails after lockTimeout with ERR_STORE_LOCKED naming the holder', async () => {
    const a = owner('held', 10_000)
    await a.send('load')
    const b = here<number>('held', 200)
    await assert.rejects(b.load(), (err: StoreError) => {
      assert.equal(err.code, 'ERR_STORE_LOCKED')
      assert.match(err.message, new RegExp(`:${a.proc.pid ?? 0}:`))
      return true
    })
    await assert.rejects(b.save(1), (err: StoreError) => err.code === 'ERR_STORE_LOCKED')
    assert.equal(await server.rowOf('held'), undefined)
    await b.close().catch(() => {})
    await a.send('close')
  })
})
