import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadBuild } from '../bench/builds.js'
import { type CpuSettings, runCpuVerdict } from '../bench/cpu-verdict.js'
import { generateState, mutateState } from '../bench/data.js'
import { injectedCopy } from '../bench/inject.js'
import { threadTimes } from '../bench/thread-cpu.js'
import { TimeLimitError } from '../bench/time-limit.js'
import { tempDir } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const settings: CpuSettings = {
  savesPerSlice: 8,
  minRounds: 8,
  checkEvery: 4,
  maxRounds: 24,
  timeBudgetMs: 10_000,
  confidence: 0.95,
  bootstrapResamples: 1000,
  seed: 1,
  maxRatioToBase: 1.25,
  budget: { cloneFactor: 0.85, hopFactor: 10 },
  sliceTimeoutMs: 10_000
}

test('threadTimes() counts the CPU a busy loop burns and not the time the thread sleeps', async () => {
  const before = threadTimes()
  // Spin until the thread itself has run 60 ms (a busy machine may take the core away meanwhile, so
  // wall time would say little), bounded by 5 s of wall time so a broken reader fails, not hangs.
  const giveUp = performance.now() + 5000
  while (threadTimes().runNs - before.runNs < 60e6 && performance.now() < giveUp);
  const spun = threadTimes()
  await new Promise((resolve) => setTimeout(resolve, 30))
  const slept = threadTimes()
  const spinNs = spun.runNs - before.runNs
  const sleepNs = slept.runNs - spun.runNs
  assert.ok(spinNs >= 60e6, `the busy loop was counted (${spinNs} ns)`)
  assert.ok(sleepNs < spinNs / 2, `sleeping cost ${sleepNs} ns against ${spinNs} ns spinning`)
})

test('the CPU verdict fails a build with a 5 ms busy-wait per save against the unchanged build, in one process', async () => {
  const dir = tempDir('offload-store-bench-cpu-')
  const slow = await loadBuild(injectedCopy(root, join(dir, 'busy'), 'busy-5ms'))
  const base = await loadBuild(root)
  const state = generateState(20_000)
  const result = await runCpuVerdict({
    lib: slow.lib,
    base,
    subjects: [{ name: 'store/json', codec: (lib) => lib.codecs.json() }],
    state,
    stateBytes: 20_000,
    mutate: (step) => { mutateState(state, step) },
    dir,
    settings
  })
  assert.equal(result.verdict, 'fail')
  const subject = result.subjects[0]
  assert.ok(subject !== undefined)
  assert.ok(subject.deciding.interval.low > settings.maxRatioToBase, `interval ${subject.deciding.interval.low}–${subject.deciding.interval.high}`)
  assert.equal(subject.deciding.perRound.length, result.rounds)
})

test('a save that never finishes ends the CPU verdict with a time-limit error instead of hanging it', async () => {
  const dir = tempDir('offload-store-bench-hang-')
  const { lib } = await loadBuild(root)
  // The worker's encode blocks far longer than the slice's limit.
  const codec = join(dir, 'stuck-codec.mjs')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(codec, 'let calls = 0\nexport function encode (value) { if (++calls > 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000); return JSON.stringify(value) }\nexport const decode = (bytes) => JSON.parse(Buffer.from(bytes).toString())\n')
  const started = performance.now()
  await assert.rejects(runCpuVerdict({
    lib,
    subjects: [{ name: 'store/stuck', codec: (l) => l.codecs.module(new URL(`file://${codec}`)) }],
    state: { a: 1 },
    stateBytes: 7,
    mutate: () => {},
    dir,
    settings: { ...settings, sliceTimeoutMs: 1000 }
  }), (err: unknown) => err instanceof TimeLimitError)
  assert.ok(performance.now() - started < 15_000)
})
