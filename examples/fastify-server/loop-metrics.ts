import diagnosticsChannel from 'node:diagnostics_channel'
import { type EventLoopUtilization, monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { channels, type WriteEndMessage } from '../../src/index.js'

/** What `GET /metrics/loop` answers. Delays are in milliseconds. */
export interface LoopReport {
  /** Milliseconds since the histogram was last reset (or the monitor started). */
  readonly windowMs: number
  /** Event-loop delay samples in the window (one per loop turn of at least `resolution` ms). */
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly meanMs: number
  /** Event-loop utilization over the window, 0 to 1. */
  readonly elu: number
  /** Store writes that ended in the window, from the `offload-store:write:*` channels. */
  readonly writes: {
    readonly ok: number
    readonly failed: number
    readonly bytes: number
    /** Longest main-thread hand-off of one write (postMessage), when it was measured. */
    readonly maxMainMs: number
    /** Longest write from hand-off to acknowledgement. */
    readonly maxTotalMs: number
  }
}

const nsToMs = (ns: number): number => Math.round(ns / 1e4) / 100

/**
 * The server's own view of its event loop: `monitorEventLoopDelay` at 1 ms resolution (so an
 * idle loop reads about 1 ms: the histogram records the whole interval between its timer's
 * turns), event-loop utilization, and what the stores wrote, all since the last {@link reset}.
 */
export class LoopMonitor {
  readonly #histogram = monitorEventLoopDelay({ resolution: 1 })
  #elu: EventLoopUtilization = performance.eventLoopUtilization()
  #since = performance.now()
  #ok = 0
  #failed = 0
  #bytes = 0
  #maxMainMs = 0
  #maxTotalMs = 0

  readonly #onWriteEnd = (message: unknown): void => {
    const m = message as WriteEndMessage
    this.#ok++
    this.#bytes += m.bytes
    if (m.mainMs !== undefined && m.mainMs > this.#maxMainMs) this.#maxMainMs = m.mainMs
    if (m.totalMs > this.#maxTotalMs) this.#maxTotalMs = m.totalMs
  }

  readonly #onWriteError = (): void => { this.#failed++ }

  start (): void {
    this.#histogram.enable()
    diagnosticsChannel.subscribe(channels.writeEnd.name, this.#onWriteEnd)
    diagnosticsChannel.subscribe(channels.writeError.name, this.#onWriteError)
    this.reset()
  }

  stop (): void {
    this.#histogram.disable()
    diagnosticsChannel.unsubscribe(channels.writeEnd.name, this.#onWriteEnd)
    diagnosticsChannel.unsubscribe(channels.writeError.name, this.#onWriteError)
  }

  reset (): void {
    this.#histogram.reset()
    this.#elu = performance.eventLoopUtilization()
    this.#since = performance.now()
    this.#ok = this.#failed = this.#bytes = this.#maxMainMs = this.#maxTotalMs = 0
  }

  report (): LoopReport {
    const h = this.#histogram
    const empty = h.count === 0 // before the first sample min/max/percentiles are placeholders
    return {
      windowMs: Math.round(performance.now() - this.#since),
      samples: h.count,
      p50Ms: empty ? 0 : nsToMs(h.percentile(50)),
      p99Ms: empty ? 0 : nsToMs(h.percentile(99)),
      maxMs: empty ? 0 : nsToMs(h.max),
      meanMs: empty ? 0 : nsToMs(h.mean),
      elu: Math.round(performance.eventLoopUtilization(this.#elu).utilization * 1000) / 1000,
      writes: {
        ok: this.#ok,
        failed: this.#failed,
        bytes: this.#bytes,
        maxMainMs: Math.round(this.#maxMainMs * 100) / 100,
        maxTotalMs: Math.round(this.#maxTotalMs * 100) / 100
      }
    }
  }
}
