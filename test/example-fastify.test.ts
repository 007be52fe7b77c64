// End to end: the compiled Fastify example as a child process, real HTTP load on loopback, SIGTERM,
// then the files on disk. Asserts correctness only; the loop delay under load is reported with
// t.diagnostic, never asserted (this runs on noisy 2-core machines).
import assert from 'node:assert/strict'
import { existsSync, type FSWatcher, watch } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Pairing, PairingInput, Settings } from '../examples/fastify-server/app.js'
import { loopReport, putLoad, resetLoop, type ServerProcess, startServer } from '../examples/fastify-server/harness.js'
import type { LoopReport } from '../examples/fastify-server/loop-metrics.js'
import { KeyedStore, Store } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

async function readPairings (dir: string): Promise<Map<string, Pairing>> {
  const store = new KeyedStore<string, Pairing>({ path: join(dir, 'pairings.json'), shutdownRegister: fakeRegister().register })
  try {
    return new Map(await store.load())
  } finally {
    await store.close()
  }
}

async function readSettings (dir: string): Promise<Settings | undefined> {
  const store = new Store<Settings>({ path: join(dir, 'settings.json'), shutdownRegister: fakeRegister().register })
  try {
    return await store.load()
  } finally {
    await store.close()
  }
}

async function stopCleanly (server: ServerProcess): Promise<void> {
  const exit = await server.stop('SIGTERM')
  assert.deepEqual(exit, { code: 0, signal: null }, `the server did not exit cleanly; stderr:\n${server.stderr()}`)
}

/** Every acknowledged pairing is on disk with the value sent, and nothing is there that was not sent. */
function assertOnDisk (onDisk: ReadonlyMap<string, Pairing>, sent: ReadonlyMap<string, PairingInput>, acknowledged: ReadonlyMap<string, Pairing>, deleted: ReadonlySet<string>): void {
  const wrong: string[] = []
  for (const [id, pairing] of acknowledged) {
    const stored = onDisk.get(id)
    if (deleted.has(id)) {
      if (stored !== undefined) wrong.push(`${id}: deleted (204) but still on disk`)
    } else if (stored === undefined) {
      wrong.push(`${id}: acknowledged but missing`)
    } else if (stored.name !== pairing.name || stored.publicKey !== pairing.publicKey || stored.pairedAt !== pairing.pairedAt) {
      wrong.push(`${id}: ${JSON.stringify(stored)} on disk, ${JSON.stringify(pairing)} acknowledged`)
    }
  }
  for (const [id, stored] of onDisk) {
    const request = sent.get(id)
    if (request === undefined) wrong.push(`${id}: on disk but never sent`)
    else if (stored.name !== request.name || stored.publicKey !== request.publicKey) wrong.push(`${id}: on disk with a value that was never sent`)
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} wrong entries`)
}

/** Resolves at the `count`th time `name` is renamed into `dir`: each atomic write of it is one. */
function renamesInto (dir: string, name: string, count: number): { done: Promise<void>, close: () => void } {
  let seen = 0
  let watcher: FSWatcher | undefined
  const done = new Promise<void>((resolve) => {
    watcher = watch(dir, (event, filename) => {
      if (event === 'rename' && filename === name && ++seen === count) resolve()
    })
  })
  return { done, close: () => { watcher?.close() } }
}

const figures = (r: LoopReport): string =>
  `loop p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms, ELU ${r.elu}, over ${r.windowMs} ms; ` +
  `${r.writes.ok} writes (${r.writes.failed} failed), longest main-thread hand-off ${r.writes.maxMainMs} ms`

test('every change acknowledged under load is on disk after SIGTERM', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('offload-store-example-')
  // SAVE_DELAY_MS=0: the pairing store writes as often as single-flight allows, all through the load.
  const server = await startServer({ DATA_DIR: dir, SAVE_DELAY_MS: '0' })
  t.after(async () => { await server.stop('SIGKILL') })

  await resetLoop(server.url)
  const load = await putLoad(server.url, { seconds: 2.5, maxRequests: 40_000, connections: 8 })
  const report = await loopReport(server.url)
  t.diagnostic(`${load.sent.size} PUTs sent, ${load.acknowledged.size} acknowledged, ${load.rejected} rejected, ` +
    `${load.result.errors} errors, ${load.result.timeouts} timeouts; request latency p50 ${load.result.latency.p50} ms, p99 ${load.result.latency.p99} ms`)
  t.diagnostic(`saves on (SAVE_DELAY_MS=0): ${figures(report)}`)
  assert.equal(load.mismatched, 0, 'a 2xx answer did not match the request it answered')
  assert.ok(load.acknowledged.size > 0, 'no PUT was acknowledged')

  // A few deletes and a settings change after the load, right before SIGTERM.
  const deleted = new Set<string>()
  const toDelete = [...load.acknowledged.keys()].slice(0, 25)
  for (const id of toDelete) {
    const response = await fetch(`${server.url}/pairings/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) })
    if (response.status === 204) deleted.add(id)
  }
  assert.equal(deleted.size, toDelete.length)
  const settings: Settings = { pairingEnabled: true, hubName: 'e2e' }
  const put = await fetch(`${server.url}/settings`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings), signal: AbortSignal.timeout(5000)
  })
  assert.equal(put.status, 200)

  await stopCleanly(server)
  const onDisk = await readPairings(dir)
  assertOnDisk(onDisk, load.sent, load.acknowledged, deleted)
  assert.deepEqual(await readSettings(dir), settings)
  t.diagnostic(`checked ${load.acknowledged.size} acknowledged changes (${deleted.size} of them deleted again); ${onDisk.size} pairings on disk`)
})

test('SIGTERM writes the changes still waiting for their debounce, and a restart serves them', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('offload-store-example-')
  // With a 60 s debounce nothing is written before SIGTERM: what reaches the disk, the shutdown flush wrote.
  const first = await startServer({ DATA_DIR: dir, SAVE_DELAY_MS: '60000' })
  t.after(async () => { await first.stop('SIGKILL') })
  const load = await putLoad(first.url, { seconds: 1, maxRequests: 300, connections: 4, idPrefix: 'late' })
  assert.equal(load.mismatched, 0)
  assert.ok(load.acknowledged.size > 0, 'no PUT was acknowledged')
  assert.equal(existsSync(join(dir, 'pairings.json')), false, 'written before SIGTERM: this test would not test the shutdown flush')

  await stopCleanly(first)
  assertOnDisk(await readPairings(dir), load.sent, load.acknowledged, new Set())

  const second = await startServer({ DATA_DIR: dir })
  t.after(async () => { await second.stop('SIGKILL') })
  const response = await fetch(`${second.url}/pairings`, { signal: AbortSignal.timeout(5000) })
  const body = await response.json() as { size: number, pairings: Array<Pairing & { id: string }> }
  const served = new Map(body.pairings.map(({ id, ...pairing }) => [id, pairing]))
  assertOnDisk(served, load.sent, load.acknowledged, new Set())
  assert.equal(body.size, served.size)
  await stopCleanly(second)
  t.diagnostic(`${load.acknowledged.size} changes acknowledged with a 60 s debounce pending; all written by the SIGTERM flush and served after a restart`)
})

// Guards flush() against resolving while the last write, started by a deadline that fired during
// the in-flight write, is still running (the unit test is in test/write-scheduler.test.ts).
test('SIGTERM in the middle of the load loses no acknowledged change', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('offload-store-example-')
  const server = await startServer({ DATA_DIR: dir, SAVE_DELAY_MS: '0' })
  t.after(async () => { await server.stop('SIGKILL') })
  // The load stops at the first 503 or refused connection that the shutdown causes.
  // SIGTERM once the server has written the file 20 times under the load: the load is then
  // surely under way (only PUTs cause writes), with a write in flight or about to be.
  const writes = renamesInto(dir, 'pairings.json', 20)
  t.after(writes.close)
  const loading = putLoad(server.url, { seconds: 5, maxRequests: 40_000, connections: 8, idPrefix: 'mid', stopOnError: true })
  await Promise.race([writes.done, loading.then(() => { throw new Error('the load ended before the server wrote the file 20 times') })])
  writes.close()
  const stopping = server.stop('SIGTERM')
  const load = await loading
  const exit = await stopping
  assert.deepEqual(exit, { code: 0, signal: null }, `the server did not exit cleanly; stderr:\n${server.stderr()}`)
  assert.equal(load.mismatched, 0)
  t.diagnostic(`${load.sent.size} PUTs sent, ${load.acknowledged.size} acknowledged before and during the shutdown, ${load.rejected} rejected`)
  assertOnDisk(await readPairings(dir), load.sent, load.acknowledged, new Set())
})
