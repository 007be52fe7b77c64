import assert from 'node:assert/strict'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { KeyedStore, Store } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { interleaved, logKeys, logPids, type Owner, startOwner } from './ownership-helpers.js'
import { seededRandom } from '../bench/seeded-random.js'

// The owner is killed with SIGKILL at seeded random moments while two or more other processes
// wait for the file: the kernel drops the dead owner's lock, exactly one waiter takes over, and it
// loads everything the dead owner acknowledged. Each owner logs every acknowledged key with its pid
// to a shared O_APPEND log; two owners at once would interleave their lines.
// OWNERSHIP_ROUNDS and OWNERSHIP_SEED scale and replay it (npm run test:ownership runs it long).

const dir = tempDir('offload-store-crash-')
const rounds = Number(process.env['OWNERSHIP_ROUNDS'] ?? 6)
const seed = Number(process.env['OWNERSHIP_SEED'] ?? Math.floor(Math.random() * 2 ** 31))

for (const kind of ['store', 'keyed-journal'] as const) {
  test(`${kind}: SIGKILL of the owner at random points, ${rounds} rounds with 2 waiters: one takes over each time, nothing acknowledged is lost, two owners never write at once`, { timeout: 30_000 + rounds * 5_000 }, async (t) => {
    const random = seededRandom(seed)
    t.diagnostic(`seed ${seed} (replay with OWNERSHIP_SEED=${seed})`)
    const path = join(dir, `${kind}.json`)
    const log = join(dir, `${kind}.log`)
    const owned = (owner: Owner): Promise<Record<string, unknown>> => owner.next((message) => message['owned'] !== undefined)
    const start = async (): Promise<Owner> => {
      const owner = await startOwner(kind, path)
      owner.post({ op: 'own-and-write', log }).catch(() => {})
      return owner
    }
    let waiting: Owner[] = await Promise.all([start(), start(), start()])
    const takeovers: number[] = []
    let killedAfterAcks = 0
    for (let round = 0; round <= rounds; round++) {
      // Exactly one of the live processes owns the file; find it.
      const owner = await Promise.race(waiting.map(async (child) => { await owned(child); return child }))
      const message = await owned(owner)
      const acknowledged = logKeys(log).filter((key) => !key.startsWith(`${owner.pid}-`))
      const loaded = new Set(message['loaded'] as string[])
      const lost = acknowledged.filter((key) => !loaded.has(key))
      assert.deepEqual(lost, [], `round ${round}: the new owner ${owner.pid} did not load ${lost.length} acknowledged keys (seed ${seed})`)
      waiting = waiting.filter((child) => child !== owner)
      assert.equal(waiting.filter((child) => child.logs.some((line) => line.message.startsWith('took ownership'))).length, 0, 'a waiter believes it owns the file too')
      if (round === rounds) {
        owner.child.kill('SIGKILL')
        await owner.exited
        break
      }
      // A new waiter replaces the one that will own next, so two always race for the dead lock.
      waiting.push(await start())
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 150)))
      killedAfterAcks += logPids(log).filter((pid) => pid === owner.pid).length
      const killedAt = performance.now()
      owner.child.kill('SIGKILL')
      await owner.exited
      const next = await Promise.race(waiting.map(async (child) => { await owned(child); return child }))
      takeovers.push(performance.now() - killedAt)
      assert.ok(waiting.includes(next))
    }
    for (const child of waiting) child.child.kill('SIGKILL')
    await Promise.all(waiting.map(async (child) => await child.exited))
    const pids = logPids(log)
    assert.deepEqual(interleaved(pids), [], 'two owners wrote at the same time')
    // Everything any owner acknowledged is in the file.
    const keys = logKeys(log)
    const reader = kind === 'store'
      ? new Store<Record<string, unknown>>({ path, shutdownRegister: fakeRegister().register })
      : new KeyedStore({ path, shutdownRegister: fakeRegister().register, journal: true })
    const state = reader instanceof Store ? await reader.load() ?? {} : Object.fromEntries(await reader.load())
    await reader.close()
    assert.deepEqual(keys.filter((key) => !(key in state)), [])
    const sorted = [...takeovers].sort((a, b) => a - b)
    t.diagnostic(`${rounds} kills, ${keys.length} acknowledged saves (${killedAfterAcks} by killed owners), owners ${new Set(pids).size}; kill to next owner loaded: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`)
  })
}
