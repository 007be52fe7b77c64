import type { EncoderName } from './encoders.js'
import type { LoadPattern } from './scenarios/loop-latency.js'
import type { PostgresPlan } from './scenarios/postgres.js'

/** One loop-latency scenario of the matrix, before its state is generated. */
export interface LoopScenarioSpec {
  readonly sizeBytes: number
  readonly encoder: EncoderName
  readonly pattern: LoadPattern
}

/** What one scope runs and for how long. */
export interface SuitePlan {
  readonly loopScenarios: readonly LoopScenarioSpec[]
  /** Measured time per mode, ms. */
  readonly loopDurationMs: number
  /** Interleaved rounds the loop time is split into (windows of about 500 ms). */
  readonly loopRounds: number
  readonly throughput: { readonly rounds: number, readonly timePerTaskMs: number }
  readonly manyStores: { readonly stores: number, readonly durationMs: number }
  readonly handoffSizes: readonly number[]
  /** Times the first loop scenario runs again at the end, to show memory does not grow. */
  readonly repeats: number
  /** The large keyed state scenario: its size and measured time; absent from the quick scope. */
  readonly keyed?: { readonly stateBytes: number, readonly durationMs: number, readonly rounds: number }
  /** Compression and encryption at these state sizes; absent from the quick scope. */
  readonly codecSizes?: readonly number[]
  /** The million-entry scenario; absent from the quick scope. */
  readonly million?: { readonly entries: number, readonly repeats: number }
  /** The PostgreSQL target beside the file, on a server the run starts; absent from the quick scope. */
  readonly postgres?: PostgresPlan
}

/** The state sizes of the matrix: 1 KB, 150 KB, 1.5 MB, 15 MB. */
const SIZES = [1_000, 150_000, 1_500_000, 15_000_000] as const
const ENCODERS: readonly EncoderName[] = ['json', 'schema', 'heavy']
const PATTERNS: readonly LoadPattern[] = ['save-10ms', 'delay-storm']

/** The plan for a scope: `full` is the whole matrix (minutes); `quick` is what the gate needs (under a minute). */
export function suitePlan (scope: 'quick' | 'full'): SuitePlan {
  if (scope === 'full') {
    return {
      loopScenarios: SIZES.flatMap((sizeBytes) => ENCODERS.flatMap((encoder) => PATTERNS.map((pattern) => ({ sizeBytes, encoder, pattern })))),
      loopDurationMs: 2500,
      loopRounds: 5,
      throughput: { rounds: 15, timePerTaskMs: 300 },
      manyStores: { stores: 100, durationMs: 5000 },
      handoffSizes: SIZES,
      repeats: 2,
      keyed: { stateBytes: 15_000_000, durationMs: 6000, rounds: 6 },
      codecSizes: [150_000, 1_500_000, 15_000_000],
      million: { entries: 1_000_000, repeats: 3 },
      postgres: {
        loopScenarios: [
          { sizeBytes: 150_000, encoder: 'heavy', pattern: 'save-10ms' },
          { sizeBytes: 1_500_000, encoder: 'heavy', pattern: 'save-10ms' }
        ],
        loopDurationMs: 2500,
        loopRounds: 5,
        throughput: { payloadSizes: [1_000, 150_000], rounds: 10, sliceMs: 300 },
        mainThread: { sizes: [1_000, 150_000, 1_500_000], saves: 43 },
        keyed: { stateBytes: 15_000_000, durationMs: 6000, rounds: 6, durable: { rounds: 8, saves: 10 } }
      }
    }
  }
  return {
    loopScenarios: [
      { sizeBytes: 150_000, encoder: 'heavy', pattern: 'save-10ms' },
      { sizeBytes: 150_000, encoder: 'heavy', pattern: 'delay-storm' },
      { sizeBytes: 1_500_000, encoder: 'json', pattern: 'save-10ms' }
    ],
    // Short: the quick scope's figures are reported beside the CPU verdict, which decides.
    loopDurationMs: 1500,
    loopRounds: 3,
    throughput: { rounds: 7, timePerTaskMs: 150 },
    manyStores: { stores: 100, durationMs: 2000 },
    handoffSizes: [1_500_000],
    repeats: 0
  }
}
