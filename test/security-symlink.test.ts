import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import { test } from 'node:test'
import { Store, WriterPool } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { fixture } from './rel-helpers.js'

// Symlinks planted in the store's directory must never make a write land outside it.

const dir = tempDir('offload-store-security-')
const pool = new WriterPool({ maxThreads: 2 })
test.after(async () => { await pool.close() })
let n = 0

function outsideFiles (count: number): string[] {
  return Array.from({ length: count }, () => {
    const path = join(dir, `outside${n++}.txt`)
    writeFileSync(path, 'precious', { mode: 0o644 })
    return path
  })
}
function assertUntouched (files: string[]): void {
  for (const file of files) {
    assert.equal(readFileSync(file, 'utf8'), 'precious', `${file} changed`)
    assert.equal(statSync(file).mode & 0o777, 0o644, `${file} mode changed`)
  }
}

test('symlinks planted at every predictable temp name are never followed: 50 saves succeed and no file outside changes', async () => {
  const where = join(dir, `plant${n++}`)
  mkdirSync(where)
  const base = 'state.json'
  const guesses = [
    `.${base}.tmp`, `${base}.tmp`, `${base}~`, `.${base}.swp`, `${base}.new`, `${base}.bak`,
    `.${base}.0000000000000000.tmp`, `.${base}.ffffffffffffffff.tmp`, `.${base}.${'0123456789abcdef'}.tmp`,
    // write-file-atomic's names are `${target}.${uint32}`: plant a few hundred of them.
    ...Array.from({ length: 300 }, (_, i) => `${base}.${i}`)
  ]
  const outside = outsideFiles(guesses.length)
  guesses.forEach((name, i) => { symlinkSync(outside[i] as string, join(where, name)) })
  const store = new Store<{ v: number }>({ path: join(where, base), shutdownRegister: fakeRegister().register, pool })
  for (let v = 0; v < 50; v++) await store.save({ v })
  assert.deepEqual(JSON.parse(readFileSync(join(where, base), 'utf8')), { v: 49 })
  assertUntouched(outside)
  assert.equal(lstatSync(join(where, base)).isFile(), true)
  // The stale-temp cleanup removed the links that match our exact temp pattern (the links, never their targets) and nothing else.
  const left = new Set(readdirSync(where))
  for (const name of guesses) assert.equal(left.has(name), !/^\.state\.json\.[0-9a-f]{16}\.tmp$/.test(name), name)
  await store.close()
})

test('an attacker process racing the writer (planting and swapping symlinks at each temp file it sees) never gets a byte written outside', { timeout: 120_000 }, async (t) => {
  const where = join(dir, `race${n++}`)
  mkdirSync(where)
  const [outside] = outsideFiles(1) as [string]
  const racer = spawn(process.execPath, [fixture('symlink-racer.js'), where, outside], { stdio: ['ignore', 'pipe', 'inherit'] })
  let report = ''
  racer.stdout.setEncoding('utf8').on('data', (chunk: string) => { report += chunk })
  const exited = new Promise<void>((resolve) => racer.on('exit', () => { resolve() }))
  t.after(() => { racer.kill('SIGKILL') }) // even when an assertion below fails
  const store = new Store<{ v: number, pad: string }>({ path: join(where, 'state.json'), shutdownRegister: fakeRegister().register, pool })
  let ok = 0
  const failures: string[] = []
  for (let v = 0; v < 300; v++) {
    try {
      await store.save({ v, pad: 'p'.repeat(v * 100) })
      ok++
    } catch (err) {
      failures.push(String((err as { code?: string }).code))
    }
    assertUntouched([outside])
  }
  racer.kill('SIGTERM')
  await exited
  t.diagnostic(`racer ${report.trim()}; saves ok ${ok}, failed ${failures.length} (${[...new Set(failures)].join(', ')})`)
  assertUntouched([outside])
  // Failures, if any, are clean write errors (the racer deleted our temp file), never a crash.
  for (const code of failures) assert.equal(code, 'ERR_STORE_WRITE')
  await store.close().catch(() => {})
})

test('why our own writer: write-file-atomic follows a symlink planted at its predictable temp name and writes outside the directory', async () => {
  const require = createRequire(import.meta.url)
  const modulePath = require.resolve('write-file-atomic')
  const writeFileAtomic = require('write-file-atomic') as { sync: (file: string, data: string) => void }
  const where = join(dir, `wfa${n++}`)
  mkdirSync(where)
  const [outside] = outsideFiles(1) as [string]
  const target = join(where, 'state.json')
  // Its temp name is sha1(its own path, pid, threadId, call count): known in advance. Plant the next few.
  for (let call = 1; call <= 50; call++) {
    const hash = createHash('sha1').update(modulePath).update(String(process.pid)).update(String(threadId)).update(String(call)).digest().readUInt32BE(0)
    try { symlinkSync(outside, `${target}.${hash}`) } catch {}
  }
  writeFileAtomic.sync(target, 'attacker-controlled destination')
  assert.equal(readFileSync(outside, 'utf8'), 'attacker-controlled destination', 'write-file-atomic wrote through the planted link')
})
