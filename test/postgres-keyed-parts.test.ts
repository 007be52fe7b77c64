import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore, postgres, ShutdownRegistry } from '../src/index.js'
import { quiet, tempDir } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'

// A large save reaches the PostgreSQL keyed writer in parts ahead of its write, as it reaches a
// file's: the rows it commits are the whole change set, in the map's order, in one transaction.

const server: TestServer = await startServer()
const dir = tempDir()
const register = new ShutdownRegistry().register

const open = (name: string): KeyedStore<string, unknown> => new KeyedStore<string, unknown>({
  path: join(dir, `${name}.json`),
  name,
  shutdownRegister: register,
  logger: quiet,
  delayMs: 60_000,
  retry: false,
  target: postgres({ connectionString: server.connectionString, leaseMs: 10_000, lockTimeout: 0 })
})

test('a save of 50,000 changes sent in parts commits every row in the map\'s order, and a later one applies its deletes and updates', async () => {
  const store = open('parts')
  await store.load()
  for (let i = 0; i < 50_000; i++) store.set(`e${i}`, { id: i })
  await store.saveNow()
  for (let i = 0; i < 20_000; i++) store.set(`e${i * 2}`, { id: i, changed: true })
  for (let i = 0; i < 5000; i++) store.delete(`e${i * 2 + 1}`)
  store.set('added', 'last')
  await store.saveNow()
  await store.close()
  const { rows } = await server.query<{ key: string, value: Buffer }>('SELECT key, value FROM offload_store_entries WHERE name = $1 ORDER BY position', ['parts'])
  assert.deepEqual(rows.map((row) => [row.key, JSON.parse(row.value.toString('utf8'))]), [...store.entries()])
  const reopened = open('parts')
  const map = await reopened.load()
  await reopened.close()
  assert.deepEqual([...map], [...store.entries()])
})
