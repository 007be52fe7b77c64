import { type ChildProcess, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after } from 'node:test'
import { fixture } from './rel-helpers.js'

// Child processes that own stores, for the ownership tests: each is an owner-child fixture driven
// over IPC, with its answers, log lines and exit awaited as events.

/** What an owner child answered to one command. */
export interface Answer {
  readonly ok: boolean
  readonly result?: unknown
  readonly code?: string
  readonly message?: string
  readonly holder?: { readonly pid: number, readonly host: string, readonly since: string }
}

/** A log line the child's store wrote. */
export interface LogLine { readonly level: string, readonly message: string, readonly [field: string]: unknown }

/** One forked owner child. */
export interface Owner {
  readonly pid: number
  readonly child: ChildProcess
  readonly logs: LogLine[]
  /** Sends a command and resolves with its answer. */
  readonly ask: (command: Record<string, unknown>) => Promise<Answer>
  /** Sends a command without waiting for its answer (it may never come: the child may be killed). */
  readonly post: (command: Record<string, unknown>) => Promise<Answer>
  /** Resolves at the first message matching `predicate` (seen ones count). */
  readonly next: (predicate: (message: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** Forks an owner child on `path` and waits until it is ready. */
export async function startOwner (kind: 'store' | 'keyed' | 'keyed-journal', path: string, lockTimeout: number | 'default' = 'default'): Promise<Owner> {
  const child = fork(fixture('owner-child.js'), [kind, path, String(lockTimeout)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  // A failed assertion must not leave a child holding the test file's process open.
  after(() => { child.kill('SIGKILL') })
  const messages: Array<Record<string, unknown>> = []
  const logs: LogLine[] = []
  const waiters: Array<{ predicate: (message: Record<string, unknown>) => boolean, resolve: (message: Record<string, unknown>) => void }> = []
  child.on('message', (message: Record<string, unknown>) => {
    messages.push(message)
    if (message['log'] !== undefined) logs.push(message['log'] as LogLine)
    for (const waiter of waiters.splice(0)) {
      if (waiter.predicate(message)) waiter.resolve(message)
      else waiters.push(waiter)
    }
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => { resolve({ code, signal }) }))
  const next = async (predicate: (message: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const seen = messages.find(predicate)
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      waiters.push({ predicate, resolve })
      exited.then(({ code, signal }) => { reject(new Error(`owner child exited (${String(code)} ${String(signal)}) before the message came`)) }, reject)
    })
  }
  let id = 0
  const post = async (command: Record<string, unknown>): Promise<Answer> => {
    const mine = ++id
    const answer = next((message) => message['id'] === mine)
    child.send({ ...command, id: mine })
    return await answer as unknown as Answer
  }
  const ready = await next((message) => message['ready'] !== undefined)
  return { pid: ready['ready'] as number, child, logs, ask: post, post, next, exited }
}

/** The pids of a shared owner log (`<pid> <key>` lines), in order. */
export function logPids (log: string): number[] {
  let text = ''
  try { text = readFileSync(log, 'utf8') } catch {}
  return text.split('\n').filter((line) => line.length > 0).map((line) => Number(line.split(' ')[0]))
}

/** The keys of a shared owner log, in order. */
export function logKeys (log: string): string[] {
  let text = ''
  try { text = readFileSync(log, 'utf8') } catch {}
  return text.split('\n').filter((line) => line.length > 0).map((line) => line.split(' ')[1] ?? '')
}

/** Pids whose lines do not form one unbroken run: each means two owners wrote at the same time. */
export function interleaved (pids: readonly number[]): number[] {
  const finished = new Set<number>()
  const bad = new Set<number>()
  let current: number | undefined
  for (const pid of pids) {
    if (pid === current) continue
    if (finished.has(pid)) bad.add(pid)
    if (current !== undefined) finished.add(current)
    current = pid
  }
  return [...bad]
}
