// The "server" whose event loop we measure: every millisecond it handles a small request (parse a
// body, build a response, stringify it), about what a JSON API does per call.

const BODY = JSON.stringify({ user: 'u-1042', action: 'toggle', target: 'light.kitchen', at: 1_700_000_000_000 })

/** A running server-like workload; `stop()` returns how many requests it served. */
export interface Workload {
  stop: () => number
}

/** Starts the workload; `onTick` runs once per request, for load patterns that mutate state per request. */
export function startWorkload (onTick?: (tick: number) => void): Workload {
  let served = 0
  const timer = setInterval(() => {
    const request = JSON.parse(BODY) as Record<string, unknown>
    const response = JSON.stringify({ ok: true, echo: request, served })
    if (response.length > 0) served++
    onTick?.(served)
  }, 1)
  return {
    stop: () => {
      clearInterval(timer)
      return served
    }
  }
}
