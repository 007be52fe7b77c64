import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { formatReport } from '../bench/report-table.js'
import { runPostgres } from '../bench/scenarios/postgres.js'
import { WriterPool } from '../src/index.js'
import { runResultWith, tempDir } from './helpers.js'

const pool = new WriterPool({ maxThreads: 2 })
after(async () => { await pool.close() })

// A short plan: the figures are not judged here, only that each part measured what it says.
test('the PostgreSQL scenario starts its own server and measures the loop, save() against a bare pg loop, and the main thread per save against a file', { timeout: 120_000 }, async () => {
  const result = await runPostgres({
    dir: tempDir('offload-store-bench-pg-'),
    pool,
    plan: {
      loopScenarios: [{ sizeBytes: 10_000, encoder: 'json', pattern: 'save-10ms' }],
      loopDurationMs: 300,
      loopRounds: 1,
      throughput: { payloadSizes: [1_000], rounds: 2, sliceMs: 100 },
      mainThread: { sizes: [10_000], saves: 8 }
    }
  })
  if (result.skipped !== undefined) assert.fail(`skipped: ${result.skipped}`)
  assert.match(result.server, /^PostgreSQL \d+/)
  const loop = result.loopLatency[0] ?? assert.fail('no loop scenario')
  assert.ok(loop.modes.inline.writes > 0, 'the inline pg saver wrote nothing')
  assert.ok(loop.modes.offloaded.writes > 0, 'the Store on PostgreSQL wrote nothing')
  const pair = result.throughput[0] ?? assert.fail('no throughput row')
  assert.ok(pair.saveOpsPerSec > 0 && pair.bareOpsPerSec > 0, JSON.stringify(pair))
  assert.equal(pair.roundRatios.length, 2)
  assert.ok(Number.isFinite(pair.ratio) && pair.ratio > 0)
  const main = result.mainThread[0] ?? assert.fail('no main-thread row')
  assert.equal(main.saves, 5)
  assert.ok(main.fileMainMs > 0 && main.postgresMainMs > 0 && Number.isFinite(main.ratio), JSON.stringify(main))
  const report = formatReport(runResultWith({ postgres: result }))
  assert.match(report, /PostgreSQL target \(PostgreSQL \d+/)
  assert.match(report, /postgres\/json\/10KB\/save-10ms/)
  assert.match(report, /bare pg\/s/)
})

test('without PostgreSQL binaries the scenario reports itself skipped, in the report and in the JSON', async () => {
  const result = await runPostgres({
    dir: tempDir('offload-store-bench-pg-'),
    pool,
    binDir: tempDir('offload-store-no-pg-'),
    plan: { loopScenarios: [], loopDurationMs: 1, loopRounds: 1, throughput: { payloadSizes: [], rounds: 1, sliceMs: 1 }, mainThread: { sizes: [], saves: 1 } }
  })
  const message = 'skipped: PostgreSQL binaries not found (apt-get install postgresql)'
  assert.deepEqual(result, { kind: 'postgres', skipped: 'PostgreSQL binaries not found (apt-get install postgresql)' })
  assert.ok(formatReport(runResultWith({ postgres: result })).includes(`PostgreSQL target: ${message}`))
  assert.ok(JSON.stringify(runResultWith({ postgres: result })).includes('"skipped":"PostgreSQL binaries not found (apt-get install postgresql)"'))
})

// A small keyed state (about 6,600 entries): the rows are counted by the server, so a save that
// rewrote the state would show thousands of rows per save where the change is 66.
test('the keyed PostgreSQL figures are measured beside a file: rows written per save are the change, not the state, and saveNow() is timed against a bare upsert', { timeout: 120_000 }, async () => {
  const result = await runPostgres({
    dir: tempDir('offload-store-bench-pg-'),
    pool,
    plan: {
      loopScenarios: [],
      loopDurationMs: 1,
      loopRounds: 1,
      throughput: { payloadSizes: [], rounds: 1, sliceMs: 1 },
      mainThread: { sizes: [], saves: 1 },
      keyed: { stateBytes: 1_500_000, durationMs: 600, rounds: 2, durable: { rounds: 2, saves: 4 } }
    }
  })
  if (result.skipped !== undefined) assert.fail(`skipped: ${result.skipped}`)
  const k = result.keyed ?? assert.fail('no keyed figures')
  assert.ok(k.entries > 6000 && k.stateBytes > 1_500_000, `${k.entries} entries, ${k.stateBytes} B`)
  assert.equal(k.changedPerSave, Math.round(k.entries / 100))
  for (const [label, loop] of [['idle', k.idle], ['file', k.file.loop], ['PostgreSQL', k.postgres.loop]] as const) {
    assert.ok(loop.samples > 0 && loop.p99Ms > 0 && loop.maxMs >= loop.p99Ms, `${label}: ${JSON.stringify(loop)}`)
  }
  for (const [label, f] of [['file', k.file], ['PostgreSQL', k.postgres]] as const) {
    assert.ok(f.writes > 0 && f.savesPerSec > 0 && f.mainMs.count > 0 && f.mainMs.p50Ms > 0, `${label}: ${JSON.stringify(f)}`)
  }
  const p = k.postgres
  // Every entry set was written (a retried save could write some twice), and a save wrote about its change.
  assert.ok(p.rowsWritten >= p.entriesChanged && p.rowsWritten <= p.entriesChanged * 1.5, `${p.rowsWritten} rows for ${p.entriesChanged} entries set`)
  assert.ok(p.rowsPerSave >= k.changedPerSave && p.rowsPerSave <= k.changedPerSave * 2.5, `${p.rowsPerSave} rows per save, ${k.changedPerSave} changed`)
  assert.ok(p.rowsPerSave < k.entries / 10, `${p.rowsPerSave} rows per save of ${k.entries} entries: the save rewrote the state`)
  const d = k.durable
  assert.equal(d.roundRatios.length, 2)
  assert.ok(d.saveOpsPerSec > 0 && d.bareOpsPerSec > 0 && Number.isFinite(d.ratio) && d.ratio > 0, JSON.stringify(d))
  const report = formatReport(runResultWith({ postgres: result }))
  assert.match(report, /KeyedStore on PostgreSQL and on a file, \d+ entries/)
  assert.match(report, /rows written per save, counted by the server \(pg_stat_user_tables\): \d/)
  assert.match(report, /KeyedStore\.saveNow\(\) \d+\/s, bare pg upsert/)
  assert.ok(JSON.stringify(runResultWith({ postgres: result })).includes(`"rowsPerSave":${p.rowsPerSave}`))
})
