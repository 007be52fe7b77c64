import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bootstrapMedianInterval, decide, medianOf, perLookConfidence } from '../bench/paired-stats.js'

const ratios = [0.93, 1.02, 0.97, 1.05, 0.99, 1.01, 0.96, 1.08, 0.98, 1.0, 0.95, 1.03]

test('the bootstrap interval of the median is the same for the same seed, and holds the sample median', () => {
  const a = bootstrapMedianInterval(ratios, 0.95, 2000, 7)
  const b = bootstrapMedianInterval(ratios, 0.95, 2000, 7)
  assert.deepEqual(a, b)
  const median = medianOf(ratios)
  assert.ok(a.low <= median && median <= a.high, `${a.low} <= ${median} <= ${a.high}`)
  assert.ok(a.low >= Math.min(...ratios) && a.high <= Math.max(...ratios))
})

test('a higher confidence gives an interval at least as wide', () => {
  const narrow = bootstrapMedianInterval(ratios, 0.8, 2000, 1)
  const wide = bootstrapMedianInterval(ratios, 0.997, 2000, 1)
  assert.ok(wide.low <= narrow.low && wide.high >= narrow.high)
})

test('decide() passes only an interval wholly below the limit, fails one wholly above, and leaves one that straddles it undecided', () => {
  assert.equal(decide({ low: 0.9, high: 1.1, confidence: 0.95 }, 1.25), 'pass')
  assert.equal(decide({ low: 1.3, high: 1.6, confidence: 0.95 }, 1.25), 'fail')
  assert.equal(decide({ low: 1.1, high: 1.3, confidence: 0.95 }, 1.25), 'undecided')
  assert.equal(decide({ low: Number.NaN, high: Number.NaN, confidence: 0.95 }, 1.25), 'undecided')
})

test('each of several looks uses a stricter confidence, so the looks together keep the stated one', () => {
  assert.equal(perLookConfidence(0.95, 1), 0.95)
  assert.ok(Math.abs(perLookConfidence(0.95, 16) - (1 - 0.05 / 16)) < 1e-12)
})

test('the median of an even count is the mean of the middle two, and of nothing is NaN', () => {
  assert.equal(medianOf([4, 1, 3, 2]), 2.5)
  assert.ok(Number.isNaN(medianOf([])))
})
