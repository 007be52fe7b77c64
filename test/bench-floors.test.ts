import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { WriterPool } from '../src/index.js'
import { generateState } from '../bench/data.js'
import { runHandoffCost } from '../bench/scenarios/handoff-cost.js'
import { runThroughput } from '../bench/scenarios/throughput.js'
import { tempDir } from './helpers.js'

test('the bare worker hop writes the bytes of every pair durably, in the same rounds as save() and the bare loop', async () => {
  const dir = tempDir('offload-store-bench-hop-')
  const pool = new WriterPool({})
  try {
    const result = await runThroughput({ dir, pool, timePerTaskMs: 20, rounds: 2, extended: true })
    for (const [name, figures] of [['1 KB', result], ['1 MB', result.large], ['none', result.noSync]] as const) {
      const hop = figures?.hop ?? assert.fail(`${name}: no bare worker hop in the result`)
      assert.equal(hop.roundRatios.length, 2, `${name}: one hop ratio per round`)
      assert.ok(hop.opsPerSec > 0 && Number.isFinite(hop.ratio) && hop.ratio > 0, `${name}: hop ${hop.opsPerSec}/s, ratio ${hop.ratio}`)
    }
    // The worker replaced its targets with exactly what the bare loop wrote to its own.
    const written = (file: string): string => readFileSync(join(dir, 'throughput', file), 'utf8')
    assert.equal(written('hop.json'), written('bare.json'))
    assert.equal(written(`hop-full-${result.large?.payloadBytes ?? 0}.json`), written(`bare-full-${result.large?.payloadBytes ?? 0}.json`))
    assert.equal(written(`hop-none-${result.noSync?.payloadBytes ?? 0}.json`), written(`bare-none-${result.noSync?.payloadBytes ?? 0}.json`))
  } finally {
    await pool.close()
  }
})

test('the hand-off floors are timed beside every save(), each against a JSON.stringify of its own', async () => {
  const dir = tempDir('offload-store-bench-floors-')
  const pool = new WriterPool({})
  try {
    const result = await runHandoffCost({ dir, pool, sizes: [150_000], timePerTaskMs: 20 })
    const row = result.rows[0] ?? assert.fail('no row')
    const floors = row.floors ?? assert.fail('no floors in the row')
    for (const [name, f] of Object.entries(floors)) assert.ok(f.ms > 0 && Number.isFinite(f.ratioToStringify) && f.ratioToStringify > 0, `${name}: ${f.ms} ms, ratio ${f.ratioToStringify}`)
    // Stringify + post does a whole JSON.stringify, then copies its text: half of one stringify is a generous lower bound.
    assert.ok(floors.stringifyPost.ratioToStringify > 0.5, `stringify + post / stringify: ${floors.stringifyPost.ratioToStringify}`)
    // The lossy arm is a real save() of the same state.
    assert.equal(readFileSync(join(dir, 'handoff', 'handoff-lossy-150000.json'), 'utf8'), JSON.stringify(generateState(150_000, 11)))
  } finally {
    await pool.close()
  }
})

test('the floors can be left out, and the results then carry none', async () => {
  const dir = tempDir('offload-store-bench-nofloors-')
  const pool = new WriterPool({})
  try {
    const handoff = await runHandoffCost({ dir, pool, sizes: [1_000], timePerTaskMs: 5, floors: false })
    assert.equal(handoff.rows[0]?.floors, undefined)
    const throughput = await runThroughput({ dir, pool, timePerTaskMs: 5, rounds: 1, hop: false })
    assert.equal(throughput.hop, undefined)
  } finally {
    await pool.close()
  }
})
