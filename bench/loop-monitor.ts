import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { median } from './percentiles.js'
import { threadTimes, threadTimesSupported } from './thread-cpu.js'

/** Event-loop delay and utilisation over one measured window. */
export interface LoopStats {
  /** Median loop delay, ms. Includes the 1 ms sampling resolution, so an idle loop reads about 1. */
  readonly p50Ms: number
  /** 99th percentile loop delay, ms. */
  readonly p99Ms: number
  /** Longest single delay, ms: a 200 ms stall is one sample, so percentiles alone hide it. */
  readonly maxMs: number
  /** Mean loop delay, ms. */
  readonly meanMs: number
  /** Event-loop utilisation (0..1): share of the window the main thread was busy. */
  readonly elu: number
  /** Delay samples taken. */
  readonly samples: number
  /**
   * Share of the window the main thread was runnable but waited for a CPU (schedstat's run-queue
   * wait): the scheduler noise other processes caused, apart from what the loop itself did. 0
   * where the figure is not available.
   */
  readonly runQueueWaitShare: number
}

const schedstat = threadTimesSupported()

const NS_PER_MS = 1e6

/** Starts measuring the event loop; `stop()` ends the window and returns its figures. */
export function startLoopMonitor (): { stop: () => LoopStats } {
  // resolution 1 ms: the finest the histogram's timer allows, and the resolution the figures are read at.
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  const elu = performance.eventLoopUtilization()
  const waitBefore = schedstat ? threadTimes(false).waitNs : 0
  const started = performance.now()
  histogram.enable()
  return {
    stop: () => {
      histogram.disable()
      const used = performance.eventLoopUtilization(elu)
      const waitedMs = schedstat ? (threadTimes(false).waitNs - waitBefore) / NS_PER_MS : 0
      return {
        p50Ms: histogram.percentile(50) / NS_PER_MS,
        p99Ms: histogram.percentile(99) / NS_PER_MS,
        maxMs: histogram.max / NS_PER_MS,
        meanMs: Number.isNaN(histogram.mean) ? 0 : histogram.mean / NS_PER_MS,
        elu: used.utilization,
        samples: histogram.count,
        runQueueWaitShare: waitedMs / Math.max(1e-9, performance.now() - started)
      }
    }
  }
}

/**
 * Combines the windows of one mode: the median of their p50s and p99s (one window hit by a burst
 * of background load does not decide), the largest max, the mean ELU weighted by samples.
 */
export function combineLoopStats (windows: readonly LoopStats[]): LoopStats {
  const samples = windows.reduce((sum, w) => sum + w.samples, 0)
  const weighted = (pick: (w: LoopStats) => number): number => samples === 0 ? 0 : windows.reduce((sum, w) => sum + pick(w) * w.samples, 0) / samples
  return {
    p50Ms: median(windows.map((w) => w.p50Ms)),
    p99Ms: median(windows.map((w) => w.p99Ms)),
    maxMs: Math.max(0, ...windows.map((w) => w.maxMs)),
    meanMs: weighted((w) => w.meanMs),
    elu: weighted((w) => w.elu),
    samples,
    runQueueWaitShare: median(windows.map((w) => w.runQueueWaitShare))
  }
}
