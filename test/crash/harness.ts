import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { padLetter, padSize, seededRandom } from './model.js'

// The crash-consistency harness: children save continuously and are SIGKILLed at random moments;
// after each kill every file must decode and hold the last acknowledged version or a later issued
// one, and the temp files a kill left must be gone once a later child has written that path.

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url))

/** Options of {@link runCrashHarness}. */
export interface CrashOptions {
  /** Where each lane gets its own directory. */
  readonly dir: string
  /** Children run at once, each in its own directory. */
  readonly lanes: number
  /** Kills per lane. */
  readonly killsPerLane: number
  /** Stores per child. */
  readonly stores: number
  /** Longest time a child lives, in ms, before it is killed. */
  readonly maxLifeMs: number
  /** Share of versions that are 0.5..5 MB. */
  readonly bigShare: number
  /** Seeds every random choice (kill points here, save choices in the children); print it to replay a run. */
  readonly seed: number
  /** Called for each problem found (the harness goes on, to count them all). */
  readonly onProblem?: (problem: string) => void
}

/** What a run found. */
export interface CrashStats {
  kills: number
  acknowledged: number
  issued: number
  /** Kills after which some file held a version newer than the last acknowledged one (in flight, allowed). */
  inFlightSurvived: number
  /** Kills that left at least one temp file. */
  tempsLeftByKill: number
  /** Stale temp files seen removed by a later child's write. */
  staleTempsRemoved: number
  problems: string[]
}

const TEMP = /^\.store-(\d+)\.json\.[0-9a-f]{16}\.tmp$/

interface StoreState { acked: number, issued: number, staleTemps: Set<string> }

async function oneLife (dir: string, states: StoreState[], options: CrashOptions, stats: CrashStats, problem: (p: string) => void, random: () => number): Promise<void> {
  const childSeed = Math.floor(random() * 2 ** 31)
  const child = spawn(process.execPath, [CHILD, dir, String(options.stores), String(options.bigShare), String(childSeed), ...states.map((s) => String(s.issued))], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const closed = new Promise<void>((resolve) => child.on('close', () => { resolve() }))
  let timer: NodeJS.Timeout | undefined
  const kill = (): void => { child.kill('SIGKILL') }
  // Some kills during start-up, most while saving (counted from the first acknowledgement).
  const life = Math.floor(random() * options.maxLifeMs)
  if (random() < 0.2) timer = setTimeout(kill, life * 4)
  for await (const line of createInterface({ input: child.stdout })) {
    const [kind, s, v] = line.split(' ')
    if (kind === 'R') continue
    if (kind === 'E') { problem(`child error: ${line}`); continue }
    const state = states[Number(s)]
    if (state === undefined) { problem(`bad line ${JSON.stringify(line)}`); continue }
    const version = Number(v)
    if (kind === 'I') { state.issued = Math.max(state.issued, version); stats.issued++ }
    if (kind === 'A') {
      timer ??= setTimeout(kill, life)
      stats.acknowledged++
      if (version <= state.acked) problem(`store ${s}: acknowledged ${version} after ${state.acked}`)
      state.acked = Math.max(state.acked, version)
      // A write of this path has completed in this child: what a crash left for it must be gone.
      for (const name of state.staleTemps) {
        if (existsSync(join(dir, name))) problem(`store ${s}: stale temp ${name} still there after a later write`)
        else stats.staleTempsRemoved++
      }
      state.staleTemps.clear()
    }
  }
  await closed
  clearTimeout(timer)
  if (child.signalCode !== 'SIGKILL') problem(`child ended by itself (${String(child.exitCode)}): ${stderr.slice(0, 500)}`)
  stats.kills++
  check(dir, states, options, stats, problem)
}

function check (dir: string, states: StoreState[], options: CrashOptions, stats: CrashStats, problem: (p: string) => void): void {
  let newer = false
  states.forEach((state, s) => {
    const path = join(dir, `store-${s}.json`)
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && state.acked === 0) return
      problem(`store ${s}: cannot read the file after the kill (acked ${state.acked}): ${(err as Error).message}`)
      return
    }
    let value: { s?: unknown, v?: unknown, pad?: unknown }
    try {
      value = JSON.parse(text) as typeof value
    } catch {
      problem(`store ${s}: the file does not decode after the kill (${text.length} chars, acked ${state.acked}): ${JSON.stringify(text.slice(0, 60))}`)
      return
    }
    const v = value.v
    if (value.s !== s || typeof v !== 'number' || typeof value.pad !== 'string') { problem(`store ${s}: wrong shape ${JSON.stringify(text.slice(0, 60))}`); return }
    if (v < state.acked) problem(`store ${s}: holds version ${v}, older than the acknowledged ${state.acked}`)
    if (v > state.issued) problem(`store ${s}: holds version ${v}, never issued (issued up to ${state.issued})`)
    if (value.pad.length !== padSize(s, v, options.bigShare) || value.pad !== padLetter(v).repeat(value.pad.length)) problem(`store ${s}: version ${v} has a wrong or mixed pad`)
    if (v > state.acked) newer = true
  })
  if (newer) stats.inFlightSurvived++
  const temps = readdirSync(dir).filter((name) => TEMP.test(name))
  if (temps.length > 0) stats.tempsLeftByKill++
  for (const name of temps) {
    const s = Number(TEMP.exec(name)?.[1])
    states[s]?.staleTemps.add(name)
  }
}

/** Runs the harness; resolves with what it found (problems are collected, not thrown). */
export async function runCrashHarness (options: CrashOptions): Promise<CrashStats> {
  const stats: CrashStats = { kills: 0, acknowledged: 0, issued: 0, inFlightSurvived: 0, tempsLeftByKill: 0, staleTempsRemoved: 0, problems: [] }
  const problem = (p: string): void => { stats.problems.push(`${p} (seed ${options.seed})`); options.onProblem?.(p) }
  await Promise.all(Array.from({ length: options.lanes }, async (_, lane) => {
    const dir = join(options.dir, `lane${lane}`)
    mkdirSync(dir, { recursive: true })
    const states: StoreState[] = Array.from({ length: options.stores }, () => ({ acked: 0, issued: 0, staleTemps: new Set<string>() }))
    const random = seededRandom(options.seed + lane)
    for (let k = 0; k < options.killsPerLane; k++) await oneLife(dir, states, options, stats, problem, random)
  }))
  return stats
}
