// Runs the same PUT load against the example server with saves on and with SAVES=off, and prints
// the event-loop delay the server measured under that load: `npm run example:measure`.
//
//   MEASURE_SECONDS      seconds of load per run (default 5)
//   MEASURE_RATE         requests per second offered in every mode (default 1000; 0: as fast as
//                        the server answers, so the modes get different loads)
//   MEASURE_CONNECTIONS  concurrent connections (default 8)
//   MEASURE_ROUNDS       runs of each mode, interleaved (default 2)
//   MEASURE_MAX          most requests per run (default 200000)
//
// Everything goes to 127.0.0.1 only, bounded in time and in count. Each run uses a fresh temp dir.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { KeyedStore, ShutdownRegistry } from '../../src/index.js'
import { loopReport, putLoad, resetLoop, startServer } from './harness.js'

function intFromEnv (name: string, fallback: number, min = 1): number {
  const raw = process.env[name]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
  return value
}

const seconds = intFromEnv('MEASURE_SECONDS', 5)
const rate = intFromEnv('MEASURE_RATE', 1000, 0)
const connections = intFromEnv('MEASURE_CONNECTIONS', 8)
const rounds = intFromEnv('MEASURE_ROUNDS', 2)
const maxRequests = intFromEnv('MEASURE_MAX', 200_000)

const modes: ReadonlyArray<{ readonly label: string, readonly env: Record<string, string> }> = [
  { label: 'saves on, SAVE_DELAY_MS=0', env: { SAVE_DELAY_MS: '0' } },
  { label: 'saves on, SAVE_DELAY_MS=0, JOURNAL=on', env: { SAVE_DELAY_MS: '0', JOURNAL: 'on' } },
  { label: 'saves on, SAVE_DELAY_MS=1000', env: { SAVE_DELAY_MS: '1000' } },
  { label: 'SAVES=off', env: { SAVES: 'off' } }
]

interface Row {
  readonly mode: string
  readonly round: number
  readonly requests: number
  readonly acknowledged: number
  readonly reqPerS: number
  readonly latP99: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly elu: number
  readonly writes: number
  readonly maxMainMs: number
  readonly shutdownMs: number
  readonly onDisk: number | string
  /** Acknowledged PUTs of the measured load that are not on disk after SIGTERM: must be 0. */
  readonly lost: number | string
}

async function run (mode: typeof modes[number], round: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'offload-store-measure-'))
  const server = await startServer({ DATA_DIR: dir, ...mode.env })
  try {
    await putLoad(server.url, { seconds: 1, maxRequests, connections, rate, idPrefix: 'warm' }) // JIT, pools, sockets
    await resetLoop(server.url)
    const load = await putLoad(server.url, { seconds, maxRequests, connections, rate })
    const report = await loopReport(server.url)
    const stopAt = performance.now()
    const exit = await server.stop('SIGTERM')
    const shutdownMs = performance.now() - stopAt
    if (exit.code !== 0) throw new Error(`the server exited with ${JSON.stringify(exit)}; stderr:\n${server.stderr()}`)
    let onDisk: number | string = '-'
    let lost: number | string = '-'
    if (mode.env['SAVES'] !== 'off') {
      // Without `journal: true` a KeyedStore reads only the snapshot and misses what the journal holds.
      const store = new KeyedStore({ path: join(dir, 'pairings.json'), journal: mode.env['JOURNAL'] === 'on', shutdownRegister: new ShutdownRegistry().register })
      const entries = await store.load()
      await store.close()
      onDisk = entries.size
      lost = [...load.acknowledged.keys()].filter((id) => !entries.has(id)).length
    }
    return {
      mode: mode.label,
      round,
      requests: load.sent.size,
      acknowledged: load.acknowledged.size,
      reqPerS: Math.round(load.acknowledged.size / load.result.duration),
      latP99: load.result.latency.p99,
      p50: report.p50Ms,
      p99: report.p99Ms,
      max: report.maxMs,
      elu: report.elu,
      writes: report.writes.ok,
      maxMainMs: report.writes.maxMainMs,
      shutdownMs: Math.round(shutdownMs),
      onDisk,
      lost
    }
  } finally {
    await server.stop('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

const rows: Row[] = []
for (let round = 1; round <= rounds; round++) {
  for (const mode of modes) {
    const row = await run(mode, round)
    rows.push(row)
    process.stderr.write(`${JSON.stringify(row)}\n`)
  }
}

const header = ['mode', 'round', 'PUTs sent', '2xx', 'req/s', 'req p99 ms', 'loop p50 ms', 'loop p99 ms', 'loop max ms', 'ELU', 'writes', 'max hand-off ms', 'SIGTERM→exit ms', 'entries on disk', 'acked not on disk']
const lines = [
  `${seconds} s of PUT /pairings/:id per run at ${rate > 0 ? `${rate} req/s offered` : 'full speed'}, ${connections} connections, after a 1 s warm-up (node ${process.version}, ${rows.length} runs)`,
  '',
  `| ${header.join(' | ')} |`,
  `| ${header.map(() => '---').join(' | ')} |`,
  ...rows.map((r) => `| ${[r.mode, r.round, r.requests, r.acknowledged, r.reqPerS, r.latP99, r.p50, r.p99, r.max, r.elu, r.writes, r.maxMainMs, r.shutdownMs, r.onDisk, r.lost].join(' | ')} |`)
]
process.stdout.write(lines.join('\n') + '\n')
