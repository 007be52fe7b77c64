import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { interleaved } from './ownership-helpers.js'
import { fixture, lastJson, run } from './rel-helpers.js'

const dir = tempDir('offload-store-cluster-')
const rounds = Number(process.env['OWNERSHIP_CLUSTER_ROUNDS'] ?? 10)

test(`4 node:cluster workers racing for one store, ${rounds} rounds: with lockTimeout 0 exactly one owns and three get ERR_STORE_LOCKED; waiting, all four write in turn and none is lost`, { timeout: 30_000 + rounds * 3_000 }, async (t) => {
  const result = await run(process.execPath, [fixture('cluster-race.js'), dir, String(rounds), '4'])
  assert.equal(result.code, 0, result.stderr)
  const { failFast, wait, pids } = lastJson<{ failFast: string[][], wait: string[][], pids: number[] }>(result)
  for (const outcomes of failFast) assert.deepEqual(outcomes, ['ERR_STORE_LOCKED', 'ERR_STORE_LOCKED', 'ERR_STORE_LOCKED', 'owner'])
  for (let round = 0; round < rounds; round++) {
    assert.deepEqual(wait[round], ['wrote', 'wrote', 'wrote', 'wrote'])
    const file = JSON.parse(readFileSync(`${dir}/wait-${round}.json`, 'utf8')) as Record<string, boolean>
    assert.deepEqual(Object.keys(file).map(Number).sort(), [...pids].sort(), `round ${round}: a worker's write was lost`)
    const log = readFileSync(`${dir}/wait-${round}.log`, 'utf8').trim().split('\n').map((line) => Number(line.split(' ')[0]))
    assert.deepEqual(interleaved(log), [], `round ${round}: two workers held the store at once`)
  }
  t.diagnostic(`${rounds} fail-fast rounds: 1 owner + 3 ERR_STORE_LOCKED each; ${rounds} waiting rounds: 4 writers in turn each`)
})
