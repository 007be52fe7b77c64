// `npm run test:crash`: the long crash-consistency run (1,000 SIGKILLs by default).
// Env: CRASH_KILLS (total, default 1000), CRASH_LANES (children at once, default 4), CRASH_BIG_SHARE (default 0.03),
// CRASH_SEED (replays a run's random choices; printed at the start).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCrashHarness } from './harness.js'
import { runSeed } from './model.js'

const lanes = Number(process.env['CRASH_LANES'] ?? 4)
const kills = Number(process.env['CRASH_KILLS'] ?? 1000)
const dir = mkdtempSync(join(tmpdir(), 'offload-store-crash-long-'))
const seed = runSeed()
console.log(`seed ${seed} (CRASH_SEED=${seed} replays it)`)
const started = Date.now()
const stats = await runCrashHarness({
  dir,
  lanes,
  seed,
  killsPerLane: Math.ceil(kills / lanes),
  stores: 4,
  maxLifeMs: 400,
  bigShare: Number(process.env['CRASH_BIG_SHARE'] ?? 0.03),
  onProblem: (p) => { console.error('PROBLEM', p) }
})
console.log(JSON.stringify({ ...stats, problems: stats.problems.length, seconds: Math.round((Date.now() - started) / 1000) }))
rmSync(dir, { recursive: true, force: true })
process.exitCode = stats.problems.length === 0 ? 0 : 1
