import type { CpuVerdictResult } from './cpu-verdict.js'
import type { GateVerdict } from './gate.js'
import type { MachineInfo } from './machine.js'
import type { MemoryFigures } from './memory.js'
import type { CodecCostResult } from './scenarios/codec-cost.js'
import type { HandoffResult } from './scenarios/handoff-cost.js'
import type { KeyedLargeResult } from './scenarios/keyed-large.js'
import type { LoopLatencyResult } from './scenarios/loop-latency.js'
import type { ManyStoresResult } from './scenarios/many-stores.js'
import type { MillionResult } from './scenarios/million.js'
import type { PostgresResult } from './scenarios/postgres.js'

/** Sequential durable writes of 1 KB: `save()` against the bare fsync loop, in the same run. */
export interface ThroughputResult {
  readonly kind: 'throughput'
  readonly payloadBytes: number
  readonly rounds: number
  /** Median over rounds of durable `save()`s per second (each round's rate is 1000 / its median latency). */
  readonly saveOpsPerSec: number
  /** Median over rounds of bare open/write/fsync/close/rename/dir-fsync loops per second: the physical limit. */
  readonly bareOpsPerSec: number
  /** Median over rounds of the per-round ratio save/bare; the gate reads this. */
  readonly ratio: number
  /** Every round's ratio, to show the spread. */
  readonly roundRatios: readonly number[]
  /**
   * Median over rounds of the library's own write algorithm called on the main thread (no worker):
   * separates its extra steps (mkdir, fchmod) from the cost of the thread hop.
   */
  readonly atomicWriteOpsPerSec: number
  /** The same rounds with a 1 MB payload, when measured; its bare loop includes the JSON.stringify every save does. */
  readonly large?: ThroughputPair
  /** 1 KB with `durability: 'none'` against the bare loop without fsync, when measured: the overhead on a disk with instant flushes. */
  readonly noSync?: ThroughputPair
  /** The same rounds through a raw worker that does the bare loop's syscalls, when measured: the ceiling of any worker offload. */
  readonly hop?: HopFigures
}

/**
 * A bare worker hop beside its bare loop: a raw `worker_threads` Worker (no Piscina, no library
 * code) receives the bytes, does the bare loop's syscalls and replies; the main side awaits each
 * reply. Its ratio to the bare loop is the most any design that writes from a worker reaches here.
 */
export interface HopFigures {
  /** Median over rounds of hops per second (each round's rate is 1000 / its median latency). */
  readonly opsPerSec: number
  /** Median over rounds of the per-round ratio hop/bare. */
  readonly ratio: number
  readonly roundRatios: readonly number[]
}

/** save() against its bare loop for one payload: medians over alternating rounds. */
export interface ThroughputPair {
  readonly payloadBytes: number
  readonly saveOpsPerSec: number
  readonly bareOpsPerSec: number
  readonly ratio: number
  readonly roundRatios: readonly number[]
  /** The bare worker hop in the same rounds, when measured. */
  readonly hop?: HopFigures
}

/** Memory after one scenario, by name. */
export interface MemoryCheckpoint extends MemoryFigures {
  readonly after: string
}

/** Everything one run measured: the file `bench/results/<timestamp>.json` holds this. */
export interface RunResult {
  /** Bumped when the shape changes, so a baseline from another shape is refused (2: `cpu` and `gate` added). */
  readonly schemaVersion: 2
  /** `quick` or `full` for the suite; `user` for `offload-store-bench`. */
  readonly scope: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly machine: MachineInfo
  readonly loopLatency: readonly LoopLatencyResult[]
  readonly throughput?: ThroughputResult
  readonly manyStores?: ManyStoresResult
  readonly handoff?: HandoffResult
  readonly codecCost?: CodecCostResult
  /** The large keyed state: main-thread cost per save against the whole-state hand-off, and the journal. */
  readonly keyed?: KeyedLargeResult
  /** A million keyed entries: load and first save against Store and inline JSON (full scope). */
  readonly million?: MillionResult
  /** The PostgreSQL target beside the file, the large keyed state on both included, or why it was skipped (full scope). */
  readonly postgres?: PostgresResult
  /** The deciding CPU verdict: main-thread CPU per save, paired, with its interval. */
  readonly cpu?: CpuVerdictResult
  /** The gate's verdict, when the run was judged. */
  readonly gate?: GateVerdict
  /** Memory after every scenario, in order; the last entries repeat the first scenario to show no growth. */
  readonly memory: readonly MemoryCheckpoint[]
}
