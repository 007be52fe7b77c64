import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runCrashHarness } from './crash/harness.js'
import { runSeed } from './crash/model.js'
import { tempDir } from './helpers.js'

// SIGKILL at random moments while children save continuously (test/crash/harness.ts). The long
// run is `npm run test:crash`.

test('200 SIGKILLs during continuous saves: every file decodes and holds the last acknowledged version or a later in-flight one; stale temps are removed by the next write', async (t) => {
  const seed = runSeed()
  t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} replays its random choices)`)
  const stats = await runCrashHarness({ dir: tempDir('offload-store-crash-'), lanes: 4, killsPerLane: 50, stores: 3, maxLifeMs: 150, bigShare: 0.005, seed })
  t.diagnostic(JSON.stringify({ ...stats, problems: stats.problems.length }))
  assert.deepEqual(stats.problems, [])
  assert.ok(stats.kills >= 200)
  assert.ok(stats.acknowledged > 0, 'saves were acknowledged before kills')
})
