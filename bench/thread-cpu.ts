import { closeSync, openSync, readSync } from 'node:fs'

// Linux keeps per-thread scheduler figures in /proc/thread-self/schedstat: "run_ns wait_ns slices",
// run_ns being CPU time on a core and wait_ns time spent runnable on the run queue. They are
// updated when the thread is switched out (or on a tick), so reading them while running returns a
// stale figure (measured: 0 ns for a 0.3 ms busy loop). A 50 µs futex sleep switches the thread out
// first, which brings both figures up to date; the sleep itself is not CPU time.

/** CPU and run-queue time of the calling thread, nanoseconds since it started. */
export interface ThreadTimes {
  /** Nanoseconds the thread ran on a CPU. */
  readonly runNs: number
  /** Nanoseconds the thread was runnable but waited for a CPU (other work held the cores). */
  readonly waitNs: number
}

const SCHEDSTAT = '/proc/thread-self/schedstat'
const buffer = Buffer.alloc(128)
const sleeper = new Int32Array(new SharedArrayBuffer(4))
let fd: number | undefined

function parse (text: string): ThreadTimes {
  const [run, wait] = text.trim().split(' ')
  const runNs = Number(run)
  const waitNs = Number(wait)
  if (!Number.isFinite(runNs) || !Number.isFinite(waitNs)) throw new Error(`unexpected ${SCHEDSTAT} content ${JSON.stringify(text)}`)
  return { runNs, waitNs }
}

/** Whether per-thread CPU time can be read here (Linux with schedstat); the CPU verdict needs it. */
export function threadTimesSupported (): boolean {
  try {
    const probe = openSync(SCHEDSTAT, 'r')
    closeSync(probe)
    return true
  } catch {
    return false
  }
}

/**
 * Up-to-date CPU and run-queue time of the calling thread. The descriptor stays open: /proc/thread-self
 * resolves to the thread that opened it, so call this from one thread only (the main thread here).
 * `fresh: false` skips the 50 µs sleep, for callers that read only `waitNs`.
 */
export function threadTimes (fresh = true): ThreadTimes {
  fd ??= openSync(SCHEDSTAT, 'r')
  // Without the sleep, the run time is stale by up to a tick; the wait time is current either way.
  if (fresh) Atomics.wait(sleeper, 0, 0, 0.05)
  const length = readSync(fd, buffer, 0, buffer.length, 0)
  return parse(buffer.toString('latin1', 0, length))
}
