// The statistics of the CPU verdict: paired ratios, their median, and a seeded percentile bootstrap
// interval of that median. Seeded so a verdict can be replayed from the figures in the JSON.
import { seededRandom } from './seeded-random.js'

/** The median of `values` (mean of the middle two for an even count); NaN when there are none. */
export function medianOf (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** A two-sided interval and the confidence it was computed for. */
export interface Interval {
  readonly low: number
  readonly high: number
  readonly confidence: number
}

/** Percentile bootstrap interval of the median of `values`: `resamples` resamples drawn with a PRNG seeded by `seed`. */
export function bootstrapMedianInterval (values: readonly number[], confidence: number, resamples: number, seed: number): Interval {
  if (values.length === 0) return { low: Number.NaN, high: Number.NaN, confidence }
  const random = seededRandom(seed)
  const medians = new Float64Array(resamples)
  const draw = new Array<number>(values.length)
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < values.length; i++) draw[i] = values[Math.floor(random() * values.length)] as number
    medians[b] = medianOf(draw)
  }
  medians.sort()
  const tail = (1 - confidence) / 2
  const at = (q: number): number => medians[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))] as number
  return { low: at(tail), high: at(1 - tail), confidence }
}

/** A decision on one ratio: below the limit, above it, or not yet clear of it. */
export type Decision = 'pass' | 'fail' | 'undecided'

/** `pass` when the whole interval is below `limit`, `fail` when it is wholly above, otherwise `undecided`. */
export function decide (interval: Interval, limit: number): Decision {
  if (interval.high < limit) return 'pass'
  if (interval.low > limit) return 'fail'
  return 'undecided'
}

/**
 * The confidence each look must use so that, over `looks` looks at growing data, the chance of any
 * false decision stays within `1 - overall` (Bonferroni: conservative, and needs no model of the noise).
 */
export function perLookConfidence (overall: number, looks: number): number {
  return 1 - (1 - overall) / Math.max(1, looks)
}
