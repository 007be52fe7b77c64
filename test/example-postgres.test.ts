// End to end: the compiled Fastify example as several child processes sharing one real PostgreSQL
// server. One instance leads and serves; another waits for the leases as a standby. The leader is
// SIGKILLed in the middle of a load of acknowledged (committed) writes; the standby takes over with
// every one of them; then a leader paused across a take-over wakes up and is fenced.
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import type { Pairing } from '../examples/fastify-server/app.js'
import { putLoad, type ServerProcess, startServer } from '../examples/fastify-server/harness.js'
import { tempDir } from './helpers.js'
import { startServer as startPostgres } from './postgres-server.js'

// Started at the top level, so its stop hook belongs to the file.
const db = await startPostgres()
// Short, so the test waits for two take-overs in seconds; renewed every third of it.
const LEASE_MS = 2000
// The leader is killed at this many acknowledged PUTs, with others still in flight.
const KILL_AT = 300

interface Answer { readonly status: number, readonly body: Record<string, unknown> }

async function request (url: string, method: string, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

async function served (server: ServerProcess): Promise<Map<string, Pairing>> {
  const { status, body } = await request(`${server.url}/pairings`, 'GET')
  assert.equal(status, 200, `GET /pairings answered ${status}: ${JSON.stringify(body)}`)
  const list = body['pairings'] as Array<Pairing & { id: string }>
  return new Map(list.map(({ id, ...pairing }) => [id, pairing]))
}

async function stored (): Promise<Record<string, Pairing>> {
  // A KeyedStore on PostgreSQL keeps one row per entry.
  const { rows } = await db.query<{ key: string, value: Buffer }>('SELECT key, value FROM offload_store_entries WHERE name = $1', ['pairings'])
  assert.ok(rows.length > 0, 'no pairings rows')
  return Object.fromEntries(rows.map(({ key, value }) => [key, JSON.parse(value.toString('utf8')) as Pairing]))
}

/** The acknowledged pairings that `found` lacks or holds with another value. */
function missing (acknowledged: ReadonlyMap<string, Pairing>, found: ReadonlyMap<string, Pairing>): string[] {
  const wrong: string[] = []
  for (const [id, pairing] of acknowledged) {
    const got = found.get(id)
    if (got === undefined) wrong.push(`${id}: acknowledged but missing`)
    else if (got.name !== pairing.name || got.publicKey !== pairing.publicKey || got.pairedAt !== pairing.pairedAt) wrong.push(`${id}: ${JSON.stringify(got)} found, ${JSON.stringify(pairing)} acknowledged`)
  }
  return wrong
}

test('two instances on one PostgreSQL: the standby takes over every change a killed leader acknowledged, and a paused leader that wakes up is fenced', { timeout: 60_000 }, async (t) => {
  const instances: ServerProcess[] = []
  const dataDir = tempDir('offload-store-example-pg-')
  t.after(async () => { for (const instance of instances) { instance.child.kill('SIGCONT'); await instance.stop('SIGKILL') } })
  const start = async (): Promise<ServerProcess> => {
    // One DATA_DIR for all: a store on PostgreSQL keeps no file there, so instances meet on the lease.
    const env = { DATABASE_URL: db.connectionString, LEASE_MS: String(LEASE_MS), DATA_DIR: dataDir }
    const instance = await startServer(env)
    instances.push(instance)
    return instance
  }

  const a = await start()
  await a.line((line) => line['role'] === 'leader')
  const b = await start()
  // The standby serves nothing while A leads: its memory is empty, and Store.load() takes the lease.
  assert.deepEqual(await request(`${b.url}/health`, 'GET'), { status: 503, body: { role: 'standby' } })
  const early = await request(`${b.url}/pairings/early`, 'PUT', { name: 'early', publicKey: 'k' })
  assert.equal(early.status, 503)
  assert.equal(early.body['role'], 'standby')

  // Acknowledged writes against A; SIGKILL at KILL_AT acknowledgements, with the load still running.
  let killedAt = 0
  const load = await putLoad(a.url, {
    seconds: 10,
    maxRequests: 20_000,
    connections: 8,
    idPrefix: 'a',
    stopOnError: true,
    onAcknowledged: (count) => {
      if (count !== KILL_AT) return
      a.child.kill('SIGKILL')
      killedAt = performance.now()
    }
  })
  assert.deepEqual(await a.exited, { code: null, signal: 'SIGKILL' })
  assert.equal(load.mismatched, 0, 'a 2xx answer did not match the request it answered')
  assert.ok(load.acknowledged.size >= KILL_AT, `only ${load.acknowledged.size} PUTs acknowledged: A was not killed mid-load`)
  const unanswered = load.sent.size - load.acknowledged.size - load.rejected
  assert.ok(unanswered > 0, 'no PUT was in flight when A was killed')
  assert.equal(load.rejected, 0, `A refused ${load.rejected} PUTs before it was killed`)

  // B takes the leases once A's expire, and serves every change A acknowledged.
  await b.line((line) => line['role'] === 'leader', 20_000)
  const takeoverMs = performance.now() - killedAt
  const onB = await served(b)
  assert.deepEqual(missing(load.acknowledged, onB).slice(0, 10), [])
  const found = [...load.acknowledged.keys()].filter((id) => onB.has(id)).length
  // What B has beyond that was sent and in flight at the kill: committed, never answered.
  const extra = [...onB.keys()].filter((id) => !load.acknowledged.has(id))
  assert.deepEqual(extra.filter((id) => !load.sent.has(id)), [], 'B holds pairings that were never sent')
  // A renews every third of LEASE_MS, so its lease had about two thirds left at the kill; a quarter
  // leaves room for a late renewal on a busy machine, and still catches a take-over that did not wait.
  assert.ok(takeoverMs >= LEASE_MS / 4, `B took over ${takeoverMs.toFixed(0)} ms after the kill: it did not wait for A's lease`)

  // A third instance waits; B is paused (SIGSTOP) past its lease, so C takes over; then B wakes up.
  const c = await start()
  assert.equal((await request(`${c.url}/health`, 'GET')).status, 503)
  b.child.kill('SIGSTOP')
  let fenced = 0
  const onC = new Map<string, Pairing>()
  const staleAnswers: Answer[] = []
  try {
    await c.line((line) => line['role'] === 'leader', 20_000)
    for (let i = 0; i < 5; i++) {
      const answer = await request(`${c.url}/pairings/c-${i}`, 'PUT', { name: `c ${i}`, publicKey: `key c ${i}` })
      assert.equal(answer.status, 200)
      onC.set(`c-${i}`, answer.body as unknown as Pairing)
    }
  } finally {
    b.child.kill('SIGCONT')
  }
  const before = await stored()
  // Awake, B steps down at its first lease renewal, before any write reaches it.
  await b.line((line) => line['role'] === 'fenced', 20_000)
  assert.deepEqual(await request(`${b.url}/health`, 'GET'), { status: 503, body: { role: 'fenced' } })
  for (let i = 0; i < 3; i++) {
    const answer = await request(`${b.url}/pairings/stale-${i}`, 'PUT', { name: `stale ${i}`, publicKey: 'stale' })
    staleAnswers.push(answer)
    if (answer.status === 503 && answer.body['code'] === 'ERR_STORE_FENCED') fenced++
  }
  assert.equal(fenced, 3, `the stale instance answered ${JSON.stringify(staleAnswers)}`)
  assert.deepEqual(await request(`${b.url}/health`, 'GET'), { status: 503, body: { role: 'fenced' } })
  // B's memory is stale: it serves no reads either.
  assert.equal((await request(`${b.url}/pairings`, 'GET')).status, 503)

  // C's data is intact: A's acknowledged changes, C's own, none of the stale instance's.
  const afterFence = await stored()
  assert.deepEqual(afterFence, before, 'the fenced instance changed the row')
  const servedByC = await served(c)
  assert.deepEqual(missing(load.acknowledged, servedByC).slice(0, 10), [])
  assert.deepEqual(missing(onC, servedByC), [])
  assert.deepEqual([...servedByC.keys()].filter((id) => id.startsWith('stale-')), [])

  // The stale instance's shutdown writes nothing over C's row; C's hands its leases over cleanly.
  const staleExit = await b.stop('SIGTERM', 5000)
  assert.deepEqual(await stored(), before, 'the fenced instance\'s shutdown flush changed the row')
  assert.deepEqual(await c.stop('SIGTERM'), { code: 0, signal: null }, `C did not exit cleanly; stderr:\n${c.stderr()}`)
  const { rows } = await db.query<{ live: boolean }>('SELECT expires_at > clock_timestamp() AS live FROM offload_store_leases')
  assert.deepEqual(rows.map((row) => row.live), [false, false], 'C did not release its leases at SIGTERM')

  const counts = {
    acknowledged: load.acknowledged.size,
    found,
    inFlightAtKill: unanswered,
    inFlightCommitted: extra.length,
    takeoverMs: Math.round(takeoverMs),
    fenced,
    staleExit
  }
  t.diagnostic(`counts: ${JSON.stringify(counts)}`)
})

test('a leader stopped with SIGTERM hands its leases over: the standby takes over before they could expire, with every acknowledged change', { timeout: 60_000 }, async (t) => {
  // Long, so a take-over that waited for the expiry could not pass.
  const env = (): Record<string, string> => ({ DATABASE_URL: db.connectionString, LEASE_MS: '30000', DATA_DIR: tempDir('offload-store-example-pg-') })
  const a = await startServer(env())
  t.after(async () => { await a.stop('SIGKILL') })
  await a.line((line) => line['role'] === 'leader')
  // A standby asked to stop goes at once: it holds nothing.
  const idle = await startServer(env())
  t.after(async () => { await idle.stop('SIGKILL') })
  assert.deepEqual(await idle.stop('SIGTERM'), { code: 0, signal: null }, `the standby did not exit cleanly; stderr:\n${idle.stderr()}`)
  const b = await startServer(env())
  t.after(async () => { await b.stop('SIGKILL') })

  const load = await putLoad(a.url, { seconds: 1, maxRequests: 200, connections: 4, idPrefix: 'deploy' })
  assert.equal(load.mismatched, 0)
  assert.ok(load.acknowledged.size > 0, 'no PUT was acknowledged')
  const { rows: leases } = await db.query<{ expires: Date }>('SELECT min(expires_at) AS expires FROM offload_store_leases')
  const expiry = leases[0]?.expires ?? assert.fail('no lease')
  assert.deepEqual(await a.stop('SIGTERM'), { code: 0, signal: null }, `A did not exit cleanly; stderr:\n${a.stderr()}`)
  await b.line((line) => line['role'] === 'leader', 40_000)
  const { rows: now } = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')
  const tookOver = now[0]?.now ?? assert.fail('no time')
  assert.ok(tookOver < expiry, `B took over at ${tookOver.toISOString()}, after A's leases would have expired (${expiry.toISOString()})`)
  assert.deepEqual(missing(load.acknowledged, await served(b)).slice(0, 10), [])
  t.diagnostic(`${load.acknowledged.size} changes acknowledged by A; B took over ${expiry.getTime() - tookOver.getTime()} ms before A's leases would have expired, with all of them`)
  assert.deepEqual(await b.stop('SIGTERM'), { code: 0, signal: null })
})
