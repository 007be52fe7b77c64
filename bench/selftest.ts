import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { INJECTION_DESCRIPTIONS, type Injection, injectedCopy } from './inject.js'
import { medianOf } from './paired-stats.js'
import type { RunResult } from './run-result.js'

// `npm run bench:selftest`: runs the gate's verdict many times, each in a fresh process as CI would,
// on the unchanged tree and on regressions injected into copies of the built tree, quiet and with
// background CPU spinners this script starts and stops itself, and prints how often each outcome
// came out. Not part of `npm test`: it takes about half an hour on 2 cores.

const USAGE = `usage: node dist/bench/selftest.js [--scale 1] [--modes budget,base-build] [--json results.json] [--no-full-gates]
  --scale          multiplies every run count (0.2 for a trial of the script itself)
  --modes          budget: the gate as CI runs it on one build; base-build: against the unchanged build
  --json           also write every run's outcome and figures to this file
  --no-full-gates  skip the two full quick gates (unchanged and no-worker) that time the whole gate`

type Mode = 'budget' | 'base-build'
type Outcome = 'pass' | 'fail' | 'inconclusive' | 'error' | 'timeout'

/**
 * Runs per condition, [quiet, one spinner, two spinners], per mode: the targets' counts where they
 * are set (30 unchanged, 20 per regression), fewer where the outcome is not in doubt, so the whole
 * self-test fits in about half an hour on 2 cores.
 */
const PLAN: Readonly<Record<Mode, ReadonlyArray<readonly [Injection, readonly [number, number, number]]>>> = {
  'base-build': [
    ['none', [30, 30, 10]],
    ['main-encode', [20, 20, 0]],
    ['busy-5ms', [20, 20, 0]],
    ['busy-1ms', [20, 20, 0]],
    ['no-worker', [20, 20, 0]],
    ['busy-0.5ms', [10, 10, 0]],
    ['busy-0.25ms', [10, 10, 0]]
  ],
  budget: [
    ['none', [30, 30, 10]],
    ['main-encode', [10, 10, 0]],
    ['busy-5ms', [10, 10, 0]],
    ['busy-1ms', [20, 20, 0]],
    ['no-worker', [10, 10, 0]]
  ]
}
const INJECTED = [...new Set(Object.values(PLAN).flatMap((plan) => plan.map(([injection]) => injection)))]
const CONDITIONS = ['quiet', 'one spinner', 'two spinners'] as const
const RUN_LIMIT_MS = 120_000

interface RunRecord {
  readonly mode: Mode
  readonly injection: Injection
  readonly condition: typeof CONDITIONS[number]
  readonly outcome: Outcome
  readonly wallMs: number
  /** The deciding ratio's median per subject, from the run's JSON. */
  readonly ratios: Readonly<Record<string, number>>
  readonly rounds: number
  readonly runQueueWaitShare: number
}

const { values: args } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    modes: { type: 'string', default: 'budget,base-build' },
    json: { type: 'string' },
    'no-full-gates': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (args.help === true) {
  console.log(USAGE)
  process.exit(0)
}
const scale = Number(args.scale)
const modes = args.modes.split(',') as Mode[]
if (!(scale > 0) || modes.some((m) => m !== 'budget' && m !== 'base-build')) {
  console.error(USAGE)
  process.exit(2)
}

const root = fileURLToPath(new URL('../../', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'offload-store-selftest-'))
const spinners: ChildProcess[] = []

function stopSpinners (): void {
  for (const spinner of spinners.splice(0)) spinner.kill('SIGKILL')
}

function startSpinners (count: number): void {
  for (let i = 0; i < count; i++) spinners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopSpinners()
    rmSync(work, { recursive: true, force: true })
    process.exit(130)
  })
}

function outcomeOf (code: number | null, killed: boolean): Outcome {
  if (killed) return 'timeout'
  switch (code) {
    case 0: return 'pass'
    case 1: return 'fail'
    case 3: return 'inconclusive'
    default: return 'error'
  }
}

async function runGate (copy: string, extra: readonly string[]): Promise<{ outcome: Outcome, wallMs: number, stdout: string }> {
  const started = performance.now()
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', join(copy, 'dist', 'bench', 'index.js'), '--scope', 'quick', '--reporter', 'json', ...extra], { timeout: RUN_LIMIT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 }, (err, stdout) => {
      const failure = err as (Error & { code?: unknown, killed?: boolean }) | null
      const code = failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null
      resolve({ outcome: outcomeOf(code, failure?.killed === true), wallMs: performance.now() - started, stdout })
    })
  })
}

async function verdictRun (mode: Mode, injection: Injection, condition: typeof CONDITIONS[number], copy: string): Promise<RunRecord> {
  // The base build is the unchanged copy, not the checkout, so a rebuild there cannot change it mid-run.
  const { outcome, wallMs, stdout } = await runGate(copy, ['--verdict-only', ...(mode === 'base-build' ? ['--baseline-build', copies.get('none') as string] : [])])
  let ratios: Record<string, number> = {}
  let rounds = 0
  let runQueueWaitShare = Number.NaN
  try {
    const cpu = (JSON.parse(stdout) as RunResult).cpu
    if (cpu !== undefined) {
      ratios = Object.fromEntries(cpu.subjects.map((s) => [s.name, s.deciding.median]))
      rounds = cpu.rounds
      runQueueWaitShare = cpu.runQueueWaitShare
    }
  } catch {}
  return { mode, injection, condition, outcome, wallMs, ratios, rounds, runQueueWaitShare }
}

const records: RunRecord[] = []
const copies = new Map<Injection, string>()
const loadAverages: Array<{ at: string, load: number[] }> = [{ at: 'start', load: loadavg() }]
const started = performance.now()
const fullGates: Array<{ injection: Injection, outcome: Outcome, wallMs: number }> = []
try {
  for (const injection of INJECTED) copies.set(injection, injectedCopy(root, join(work, injection), injection))
  const total = modes.reduce((all, mode) => all + PLAN[mode].reduce((sum, [, counts]) => sum + counts.reduce((a, b) => a + Math.round(b * scale), 0), 0), 0)
  let done = 0
  for (const [c, condition] of CONDITIONS.entries()) {
    startSpinners(c)
    try {
      const count = (mode: Mode, injection: Injection): number => Math.round((PLAN[mode].find(([i]) => i === injection)?.[1][c] ?? 0) * scale)
      const max = Math.max(...modes.flatMap((mode) => INJECTED.map((injection) => count(mode, injection))))
      // Interleaved: trial t of every build and mode before trial t + 1, so drift hits all alike.
      for (let t = 0; t < max; t++) {
        for (const injection of INJECTED) {
          for (const mode of modes) {
            if (t >= count(mode, injection)) continue
            const record = await verdictRun(mode, injection, condition, copies.get(injection) as string)
            records.push(record)
            done++
            const ratios = Object.entries(record.ratios).map(([name, ratio]) => `${name} ${ratio.toFixed(2)}`).join(', ')
            process.stderr.write(`[${done}/${total}] ${condition}, ${mode}, ${injection}: ${record.outcome} in ${(record.wallMs / 1000).toFixed(1)} s (${record.rounds} rounds; ${ratios})\n`)
          }
        }
      }
    } finally {
      stopSpinners()
    }
    loadAverages.push({ at: `after ${condition}`, load: loadavg() })
  }
  if (args['no-full-gates'] !== true) {
    for (const injection of ['none', 'no-worker'] as const) {
      const { outcome, wallMs } = await runGate(copies.get(injection) as string, ['--gate', '--no-chart'])
      fullGates.push({ injection, outcome, wallMs })
      process.stderr.write(`full quick gate, ${injection}: ${outcome} in ${(wallMs / 1000).toFixed(1)} s\n`)
    }
  }
} finally {
  stopSpinners()
  rmSync(work, { recursive: true, force: true })
}

// The report: one table per mode, outcomes per build and condition, with the deciding ratios.
const out: string[] = [`Gate self-test: ${records.length} verdict runs in ${((performance.now() - started) / 60_000).toFixed(1)} min; load average ${loadAverages.map((l) => `${l.at} ${l.load.map((x) => x.toFixed(2)).join('/')}`).join(', ')}`, '']
for (const mode of modes) {
  out.push(`### ${mode === 'budget' ? 'One build, against its budget (as .ci/run runs it)' : 'Candidate against the unchanged base build (--baseline-build)'}`, '')
  out.push('| build | condition | runs | pass | fail | inconclusive | error/timeout | deciding ratio min / median / max | run time median / max (s) |', '|---|---|---|---|---|---|---|---|---|')
  for (const [injection] of PLAN[mode]) {
    for (const condition of CONDITIONS) {
      const runs = records.filter((r) => r.mode === mode && r.injection === injection && r.condition === condition)
      if (runs.length === 0) continue
      const count = (o: Outcome): number => runs.filter((r) => r.outcome === o).length
      const deciding = runs.flatMap((r): number[] => {
        const values = Object.entries(r.ratios).filter(([name]) => mode === 'base-build' || !name.startsWith('store/json')).map(([, v]) => v)
        return values.length === 0 ? [] : [Math.max(...values)]
      })
      const walls = runs.map((r) => r.wallMs / 1000)
      out.push(`| ${INJECTION_DESCRIPTIONS[injection]} | ${condition} | ${runs.length} | ${count('pass')} | ${count('fail')} | ${count('inconclusive')} | ${count('error') + count('timeout')} | ${deciding.length === 0 ? '-' : `${Math.min(...deciding).toFixed(2)} / ${medianOf(deciding).toFixed(2)} / ${Math.max(...deciding).toFixed(2)}`} | ${medianOf(walls).toFixed(1)} / ${Math.max(...walls).toFixed(1)} |`)
    }
  }
  out.push('')
}
if (fullGates.length > 0) out.push(`Full quick gate (\`--gate\`): ${fullGates.map((g) => `${INJECTION_DESCRIPTIONS[g.injection]}: ${g.outcome} in ${(g.wallMs / 1000).toFixed(1)} s`).join('; ')}`)
console.log(out.join('\n'))
if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ loadAverages, records, fullGates }, null, 2) + '\n')
