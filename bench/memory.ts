/** Memory after a scenario, to show that repeated runs do not grow. */
export interface MemoryFigures {
  readonly rssMB: number
  readonly heapUsedMB: number
  /** Highest RSS of the process so far (it never decreases). */
  readonly peakRssMB: number
}

const MB = 2 ** 20

/** Runs a full GC when the bench was started with --expose-gc; nothing otherwise. */
export function collectGarbage (): void {
  (globalThis as { gc?: () => void }).gc?.()
}

/** Collects garbage when `--expose-gc` allows it, so heap figures compare live data, not garbage. */
export function memorySnapshot (): MemoryFigures {
  collectGarbage()
  const usage = process.memoryUsage()
  return {
    rssMB: usage.rss / MB,
    heapUsedMB: usage.heapUsed / MB,
    // maxRSS is in kilobytes.
    peakRssMB: process.resourceUsage().maxRSS / 1024
  }
}
