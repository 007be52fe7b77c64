import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'

// Helpers for the reliability, fault and security tests: child processes, mounts, temp files.

/** True when this process runs as root (mounts, setpriv, bind mounts). */
export const isRoot = process.getuid?.() === 0

/** True when `command` is on the PATH. */
export function hasCommand (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** The compiled path of a fixture under dist/test/fixtures. */
export function fixture (name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
}

/** What a child process left behind. */
export interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `command` to its end (SIGKILLed after `killAfterMs`, when given) and collects its output. */
export async function run (command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv, cwd?: string, killAfterMs?: number } = {}): Promise<ChildResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.killAfterMs === undefined ? {} : { timeout: options.killAfterMs, killSignal: 'SIGKILL' as const })
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
  })
}

/** The last JSON line a child printed on stdout. */
export function lastJson<T> (result: ChildResult): T {
  const lines = result.stdout.trim().split('\n').filter((line) => line.startsWith('{'))
  const last = lines.at(-1)
  if (last === undefined) throw new Error(`the child printed no JSON (exit ${String(result.code)} ${String(result.signal)}): ${result.stdout}\n${result.stderr}`)
  return JSON.parse(last) as T
}

/** Mounts a tmpfs of `size` at a new directory under `parent`; unmounted when the test file ends. Root only. */
export function mountTmpfs (parent: string, name: string, size = '1m'): string {
  const where = join(parent, name)
  mkdirSync(where)
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', where], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`mount -t tmpfs failed: ${result.stderr}`)
  after(() => { spawnSync('umount', ['-l', where]); try { rmdirSync(where) } catch {} })
  return where
}

/** Why mounting is impossible here, or undefined when a tmpfs mount works. */
export const cannotMount: string | undefined = (() => {
  if (!isRoot) return 'needs root to mount a tmpfs'
  const probe = spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s'], { encoding: 'utf8' })
  return probe.status === 0 ? undefined : `mount -t tmpfs fails here: ${probe.stderr.trim()}`
})()

/** Names in `dir` that look like temp files of ours. */
export function tempsIn (dir: string): string[] {
  return readdirSync(dir).filter((name) => /\.[0-9a-f]{16}\.tmp$/.test(name))
}

/** One system call from an strace log, with `<unfinished ...>` / `resumed` halves joined. */
export interface Syscall {
  readonly pid: number
  readonly name: string
  readonly args: string
  readonly result: string
  readonly injected: boolean
}

/** Parses `strace -f -o file` output into complete calls, in the order they finished. */
export function parseStrace (text: string): Syscall[] {
  const calls: Syscall[] = []
  const unfinished = new Map<number, string>()
  for (const raw of text.split('\n')) {
    let line = raw.trim()
    const pidMatch = /^(\d+)\s+(.*)$/.exec(line)
    if (pidMatch === null) continue
    const pid = Number(pidMatch[1])
    line = pidMatch[2] ?? ''
    if (line.endsWith('<unfinished ...>')) { unfinished.set(pid, line.slice(0, -'<unfinished ...>'.length).trim()); continue }
    const resumed = /^<\.\.\. \w+ resumed>\s?(.*)$/.exec(line)
    if (resumed !== null) { line = (unfinished.get(pid) ?? '') + (resumed[1] ?? ''); unfinished.delete(pid) }
    const call = /^(\w+)\((.*)\)\s+=\s+(.*)$/.exec(line)
    if (call === null) continue
    calls.push({ pid, name: call[1] ?? '', args: call[2] ?? '', result: call[3] ?? '', injected: (call[3] ?? '').includes('(INJECTED)') })
  }
  return calls
}

/** Why strace cannot be used here, or undefined when it can trace a child. */
export const cannotStrace: string | undefined = (() => {
  if (!hasCommand('strace')) return 'strace is not installed (apt-get install strace)'
  const probe = spawnSync('strace', ['-f', '-o', '/dev/null', '-e', 'inject=fsync:error=EIO:when=1', 'true'], { encoding: 'utf8' })
  return probe.status === 0 ? undefined : `strace cannot trace or inject here: ${probe.stderr.trim()}`
})()
