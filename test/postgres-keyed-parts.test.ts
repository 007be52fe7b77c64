import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore, postgres, ShutdownRegistry } from '../src/index.js'
import { longestGap, quiet, tempDir } from './helpers.js'
import { startServer, type TestServer } from './postgres-server.js'

// A large save reaches the PostgreSQL keyed writer in parts ahead of its write, as it reaches a
// file's: the rows it commits are the whole change set, in the map's order, in one transaction.
// A large load comes back cut into runs, parsed a slice at a time, as a large file's is.

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

test('load() of 200,000 rows never blocks the event loop for more than a third of one JSON.parse of the same entries', async (t) => {
  const writer = open('large-load')
  await writer.load()
  for (let i = 0; i < 200_000; i++) writer.set(`e${i}`, { id: i, name: `entry ${i}`, on: i % 2 === 0 })
  await writer.close()
  const text = JSON.stringify(Object.fromEntries(writer.entries()))
  const parseStalls: number[] = []
  const keyedStalls: number[] = []
  // Interleaved, best of three each, so a burst of load on the machine hits both alike.
  for (let i = 0; i < 3; i++) {
    parseStalls.push(await longestGap(() => JSON.parse(text), 1))
    const store = open('large-load')
    keyedStalls.push(await longestGap(async () => await store.load(), 1))
    assert.equal(store.size, 200_000)
    assert.deepEqual(store.get('e199999'), { id: 199_999, name: 'entry 199999', on: false })
    await store.close()
  }
  const ratio = Math.min(...keyedStalls) / Math.min(...parseStalls)
  t.diagnostic(`longest stall ${keyedStalls.map(Math.round).join('/')} ms against ${parseStalls.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 1 / 3, `KeyedStore.load() from PostgreSQL stalled the loop ${ratio.toFixed(2)}x as long as one JSON.parse (${keyedStalls.map(Math.round).join('/')} against ${parseStalls.map(Math.round).join('/')} ms)`)
})
