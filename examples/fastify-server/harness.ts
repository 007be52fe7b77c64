// Runs the compiled example server as a child process and drives it with bounded HTTP load on
// loopback. Shared by the end-to-end test and by measure.ts, so both run the same load.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import type { LoopReport } from './loop-metrics.js'
import type { Pairing, PairingInput } from './app.js'

const SERVER = new URL('./server.js', import.meta.url)

interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ServerProcess {
  /** `http://127.0.0.1:PORT`, as the server printed it. */
  readonly url: string
  readonly child: ChildProcess
  /** Everything the server wrote to stderr so far. */
  readonly stderr: () => string
  /** Settles when the process exits. */
  readonly exited: Promise<Exit>
  /** Sends `signal` and waits for the exit; SIGKILLs it after `timeoutMs`. */
  readonly stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<Exit>
  /** Resolves at the first JSON line on stdout (printed so far or later) that `match` accepts. */
  readonly line: (match: (line: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>
}

/**
 * Starts `dist/examples/fastify-server/server.js` on a free loopback port with `env` added to this
 * process's environment, and resolves once it prints its listening line.
 */
export async function startServer (env: Record<string, string>, timeoutMs = 10_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [fileURLToPath(SERVER)], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<Exit>((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', stopTimeoutMs = 15_000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    const timer = setTimeout(() => { child.kill('SIGKILL') }, stopTimeoutMs)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  // Every JSON line on stdout, kept, so a wait that starts late still sees a line printed before it.
  const seen: Array<Record<string, unknown>> = []
  const waiters = new Set<(line: Record<string, unknown>) => void>()
  createInterface({ input: child.stdout }).on('line', (text) => {
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { return }
    if (typeof parsed !== 'object' || parsed === null) return
    seen.push(parsed as Record<string, unknown>)
    for (const waiter of waiters) waiter(parsed as Record<string, unknown>)
  })
  const line = async (match: (line: Record<string, unknown>) => boolean, lineTimeoutMs = 30_000): Promise<Record<string, unknown>> => {
    const earlier = seen.find(match)
    if (earlier !== undefined) return earlier
    let waiter: ((line: Record<string, unknown>) => void) | undefined
    let timer: NodeJS.Timeout | undefined
    try {
      return await new Promise((resolve, reject) => {
        waiter = (parsed) => { if (match(parsed)) resolve(parsed) }
        waiters.add(waiter)
        timer = setTimeout(() => { reject(new Error(`the server printed no matching line within ${lineTimeoutMs} ms; stderr:\n${stderr}`)) }, lineTimeoutMs)
        exited.then(({ code, signal }) => { reject(new Error(`the server exited (code ${code}, signal ${signal}) before printing the line; stderr:\n${stderr}`)) }, reject)
      })
    } finally {
      if (waiter !== undefined) waiters.delete(waiter)
      clearTimeout(timer)
    }
  }

  const url = await line((parsed) => typeof parsed['listening'] === 'string', timeoutMs)
    .then((parsed) => String(parsed['listening']))
    .catch(async (err: unknown) => {
      await stop('SIGKILL')
      throw err
    })
  if (!url.startsWith('http://127.0.0.1:')) {
    await stop('SIGKILL')
    throw new Error(`refusing to load anything but loopback, the server listens on ${url}`)
  }
  return { url, child, stderr: () => stderr, exited, stop, line }
}

export interface PutLoadOptions {
  /** Seconds of load. */
  readonly seconds: number
  /** Most requests in all; the load ends at whichever of the two bounds comes first. */
  readonly maxRequests: number
  /** Concurrent connections (one request in flight on each). @defaultValue 8 */
  readonly connections?: number
  /** Requests per second from all connections together; 0 sends as fast as answers come. @defaultValue 0 */
  readonly rate?: number
  /** Prefix of the ids, so several loads on one server touch distinct keys. @defaultValue 'dev' */
  readonly idPrefix?: string
  /**
   * End the load at the first answer that is not a 2xx or the first connection error, such as
   * when the server is shutting down, instead of reconnecting until `seconds`. @defaultValue false
   */
  readonly stopOnError?: boolean
  /** Called at each acknowledged PUT with the count so far (to act in the middle of the load). */
  readonly onAcknowledged?: (count: number) => void
}

export interface PutLoadResult {
  /** Every PUT sent, by id: each id is sent once. */
  readonly sent: ReadonlyMap<string, PairingInput>
  /** The PUTs answered with a 2xx whose body is the sent pairing: the acknowledged changes. */
  readonly acknowledged: ReadonlyMap<string, Pairing>
  /** Answers that were not 2xx. */
  readonly rejected: number
  /** 2xx answers whose body did not match the request they answered. */
  readonly mismatched: number
  readonly result: autocannon.Result
}

interface Context { id?: string }

/**
 * `PUT /pairings/:id` with a distinct id and a fresh random key in each request, for `seconds` or
 * `maxRequests`, whichever ends first; only `url` (loopback) is targeted. An answer counts as
 * acknowledged only when it is a 2xx whose body names the id and key that request sent.
 */
export async function putLoad (url: string, options: PutLoadOptions): Promise<PutLoadResult> {
  const { seconds, maxRequests, connections = 8, rate = 0, idPrefix = 'dev', stopOnError = false, onAcknowledged } = options
  const sent = new Map<string, PairingInput>()
  const acknowledged = new Map<string, Pairing>()
  let rejected = 0
  let mismatched = 0
  let n = 0
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    // autocannon stops itself at `seconds`; this only guards against it not doing so.
    const guard = setTimeout(() => { instance.stop() }, (seconds + 10) * 1000)
    const clients: autocannon.Client[] = []
    // stop() takes effect at autocannon's next sample tick; destroying the clients ends the
    // traffic now (a destroyed client does not reconnect).
    const halt = (): void => {
      instance.stop()
      for (const client of clients) (client as unknown as { destroy: () => void }).destroy()
    }
    const instance = autocannon({
      url,
      connections,
      pipelining: 1, // one request in flight per connection, so the context names the request answered
      duration: seconds,
      maxOverallRequests: maxRequests,
      timeout: 5,
      sampleInt: 250,
      setupClient: (client) => { clients.push(client) },
      ...(rate > 0 ? { overallRate: rate } : {}),
      requests: [{
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request, context) => {
          const id = `${idPrefix}-${n++}`
          const pairing: PairingInput = { name: `device ${id}`, publicKey: randomBytes(16).toString('hex') }
          sent.set(id, pairing)
          ;(context as Context).id = id
          return { ...request, path: `/pairings/${id}`, body: JSON.stringify(pairing) }
        },
        onResponse: (status, body, context) => {
          if (status < 200 || status >= 300) {
            rejected++
            if (stopOnError) halt()
            return
          }
          const id = (context as Context).id
          const answer = JSON.parse(body) as Pairing & { id: string }
          const request = id === undefined ? undefined : sent.get(id)
          if (id === undefined || answer.id !== id || request === undefined || answer.name !== request.name || answer.publicKey !== request.publicKey) {
            mismatched++
            return
          }
          acknowledged.set(id, { name: answer.name, publicKey: answer.publicKey, pairedAt: answer.pairedAt })
          onAcknowledged?.(acknowledged.size)
        }
      }]
    }, (err: unknown, res: autocannon.Result) => {
      clearTimeout(guard)
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(res)
    })
    if (stopOnError) instance.on('reqError', halt)
  })
  return { sent, acknowledged, rejected, mismatched, result }
}

/** `GET /metrics/loop`. */
export async function loopReport (url: string): Promise<LoopReport> {
  const response = await fetch(`${url}/metrics/loop`, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`GET /metrics/loop answered ${response.status}`)
  return await response.json() as LoopReport
}

/** `POST /metrics/loop/reset`. */
export async function resetLoop (url: string): Promise<void> {
  const response = await fetch(`${url}/metrics/loop/reset`, { method: 'POST', signal: AbortSignal.timeout(5000) })
  if (response.status !== 204) throw new Error(`POST /metrics/loop/reset answered ${response.status}`)
}
