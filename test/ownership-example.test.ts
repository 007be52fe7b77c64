// The cluster example end to end: four workers behind one port, the primary owning the store; with
// --mistake one worker also opens the store and must get ERR_STORE_LOCKED naming the primary.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

test('cluster example: the primary owns the store and loses no worker\'s change; a worker that opens it too gets ERR_STORE_LOCKED naming the primary', { timeout: 60_000 }, async () => {
  const dir = tempDir('offload-store-cluster-example-')
  const server = spawn(process.execPath, [fileURLToPath(new URL('../examples/cluster/server.js', import.meta.url)), dir, '--mistake'], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  createInterface({ input: server.stdout }).on('line', (line) => { lines.push(JSON.parse(line) as Record<string, unknown>); for (const wake of waiters.splice(0)) wake() })
  const next = async (predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    for (;;) {
      const seen = lines.find(predicate)
      if (seen !== undefined) return seen
      await new Promise<void>((resolve) => { waiters.push(resolve) })
    }
  }
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve))
  const ready = await next((line) => line['ready'] === true)
  const port = ready['port'] as number
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/count/c${i % 4}`, { method: 'POST' })
    assert.equal(res.status, 202)
  }
  const mistake = await next((line) => line['mistake'] !== undefined)
  assert.deepEqual(mistake, { pid: mistake['pid'], mistake: 'ERR_STORE_LOCKED', holder: ready['pid'] })
  server.kill('SIGTERM')
  assert.equal(await exited, 128 + 15)
  const reader = new KeyedStore<string, number>({ path: join(dir, 'counters.json'), shutdownRegister: fakeRegister().register, journal: true })
  assert.deepEqual(Object.fromEntries(await reader.load()), { c0: 50, c1: 50, c2: 50, c3: 50 })
  await reader.close()
})
