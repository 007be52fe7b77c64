import assert from 'node:assert/strict'
import { test } from 'node:test'
import { KeyedStore, ShutdownRegistry, Store } from '../src/index.js'
import { tempDir } from './helpers.js'
import { fixture, run } from './rel-helpers.js'

const dir = tempDir('offload-store-registry-')
let n = 0
const file = (): string => `${dir}/r${n++}.json`

interface Cycles { kind: string, cycles: number, sizeBefore: number, sizeAfter: number, heapBefore: number, heapAfter: number }

async function cycles (kind: 'store' | 'keyed', count: number): Promise<Cycles> {
  const result = await run(process.execPath, ['--expose-gc', fixture('cycle-child.js'), dir, kind, String(count)])
  assert.equal(result.code, 0, result.stderr)
  const figures = JSON.parse(result.stdout) as Cycles
  // Printed so a run records the figures, not only pass or fail.
  process.stdout.write(`# ${JSON.stringify(figures)}\n`)
  return figures
}

test('100,000 Store open/close cycles leave the registry empty and the heap flat', { timeout: 300_000 }, async () => {
  const figures = await cycles('store', 100_000)
  assert.equal(figures.sizeBefore, 0)
  assert.equal(figures.sizeAfter, 0)
  // About 1 KB per store was kept before: 100 MB against a heap of a few MB. Flat allows noise.
  assert.ok(figures.heapAfter < figures.heapBefore * 1.5, `heap grew from ${figures.heapBefore} to ${figures.heapAfter} bytes`)
})

test('100,000 KeyedStore open/close cycles leave the registry empty and the heap flat', { timeout: 300_000 }, async () => {
  const figures = await cycles('keyed', 100_000)
  assert.equal(figures.sizeBefore, 0)
  assert.equal(figures.sizeAfter, 0)
  assert.ok(figures.heapAfter < figures.heapBefore * 1.5, `heap grew from ${figures.heapBefore} to ${figures.heapAfter} bytes`)
})

test('register() returns a function that unregisters that flush, once', () => {
  const registry = new ShutdownRegistry()
  const unregister = registry.register(async () => {})
  const other = registry.register(async () => {})
  assert.equal(registry.size, 2)
  unregister()
  unregister()
  assert.equal(registry.size, 1)
  other()
  assert.equal(registry.size, 0)
})

test('close() unregisters a store from its ShutdownRegistry (Store and KeyedStore)', async () => {
  const registry = new ShutdownRegistry()
  const store = new Store({ path: file(), shutdownRegister: registry.register })
  const keyed = new KeyedStore({ path: file(), shutdownRegister: registry.register })
  assert.equal(registry.size, 2)
  await store.close()
  assert.equal(registry.size, 1)
  await keyed.close()
  assert.equal(registry.size, 0)
})

test('a shutdownRegister of the application\'s own that returns nothing keeps working, and close() still frees the path', async () => {
  const flushes: Array<() => Promise<void>> = []
  const path = file()
  const store = new Store({ path, shutdownRegister: (flush) => { flushes.push(flush) } })
  store.delaySave(() => ({ v: 1 }), 60_000)
  await flushes[0]?.()
  await store.close()
  const again = new Store({ path, shutdownRegister: () => undefined })
  await again.close()
  assert.equal(flushes.length, 1)
})

test('an open store listens for beforeExit and the exit signals; once the last one is closed, none of those listeners remains', async () => {
  const counts = (): number[] => ['beforeExit', 'SIGTERM', 'SIGINT', 'SIGHUP'].map((event) => process.listenerCount(event))
  await new Promise((resolve) => setImmediate(resolve))
  const before = counts()
  const first = new Store({ path: file(), shutdownRegister: new ShutdownRegistry().register })
  const second = new Store({ path: file(), shutdownRegister: new ShutdownRegistry().register })
  assert.deepEqual(counts(), before.map((count) => count + 1))
  await first.close()
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(counts(), before.map((count) => count + 1), 'still listening while a store is open')
  await second.close()
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(counts(), before)
})
