import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { after } from 'node:test'
import { fixture } from './rel-helpers.js'

/** A child process owning a store, driven by line commands, each answered by one JSON line. */
export interface OwnerProcess<A> {
  readonly proc: ChildProcessWithoutNullStreams
  /** Writes one command line and resolves with the owner's answer to it. */
  readonly send: (line: string) => Promise<A>
}

/** Starts the compiled fixture `name` with `args`, killed when the test file ends. */
export function ownerProcess<A> (name: string, args: readonly string[]): OwnerProcess<A> {
  const proc = spawn(process.execPath, [fixture(name), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  after(() => { proc.kill('SIGKILL') })
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]()
  return {
    proc,
    send: async (line) => {
      proc.stdin.write(line + '\n')
      const next = await lines.next()
      if (next.done === true) throw new Error(`the owner process ended before answering ${line}`)
      return JSON.parse(next.value) as A
    }
  }
}
