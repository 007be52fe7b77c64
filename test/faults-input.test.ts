import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { Store, WriterPool } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { cannotMount, fixture, lastJson, mountTmpfs, run } from './rel-helpers.js'

// Bad input on both sides: what a store is asked to save, and what it finds when it loads.
// (Encoders returning non-strings, cycles, functions, symbols, sockets and undefined are covered
// in codecs.test.ts and worker-failures.test.ts.)

const dir = tempDir('offload-store-input-')
const pool = new WriterPool({ maxThreads: 1 })
test.after(async () => { await pool.close() })
let n = 0

test('a 500 MB string saves in full without crashing the process (peak RSS reported)', { skip: cannotMount === undefined ? undefined : `${cannotMount}; on a disk, fsync of 500 MB is too slow for npm test`, timeout: 120_000 }, async (t) => {
  // On a tmpfs, so the test measures memory and correctness, not the disk.
  const where = mountTmpfs(dir, `big${n++}`, '1200m')
  const result = await run(process.execPath, [fixture('big-child.js'), join(where, 'big.json'), '500'])
  const out = lastJson<{ ok: boolean, bytes?: number, code?: string, message?: string, maxRssMb: number }>(result)
  t.diagnostic(`500 MB string: ${JSON.stringify(out)}`)
  assert.equal(result.code, 0, result.stderr)
  assert.equal(out.ok, true, out.message)
  assert.equal(out.bytes, 500_000_002)
})

test('load() of a truncated file rejects ERR_STORE_DECODE', async () => {
  const path = join(dir, `t${n++}.json`)
  const full = JSON.stringify({ list: Array.from({ length: 100 }, (_, i) => i) })
  writeFileSync(path, full.slice(0, full.length >> 1))
  const store = new Store({ path, shutdownRegister: fakeRegister().register, pool })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE' })
  await store.close()
})

test('a target path that is a symlink: load() reads through it; save() replaces the link itself and never writes through it', async () => {
  const where = join(dir, `link${n++}`)
  mkdirSync(where)
  const elsewhere = join(dir, `elsewhere${n++}.json`)
  writeFileSync(elsewhere, '{"from":"elsewhere"}')
  const path = join(where, 'state.json')
  symlinkSync(elsewhere, path)
  const store = new Store<{ from: string }>({ path, shutdownRegister: fakeRegister().register, pool })
  assert.deepEqual(await store.load(), { from: 'elsewhere' })
  await store.save({ from: 'store' })
  assert.equal(readFileSync(elsewhere, 'utf8'), '{"from":"elsewhere"}', 'the file the link pointed to is unchanged')
  assert.deepEqual(await store.load(), { from: 'store' })
  await store.close()
})

test('a dangling symlink at the target path: load() resolves undefined; save() replaces the link and creates nothing where it pointed', async () => {
  const where = join(dir, `dangling${n++}`)
  mkdirSync(where)
  const nowhere = join(dir, `nowhere${n++}.json`)
  const path = join(where, 'state.json')
  symlinkSync(nowhere, path)
  const store = new Store<{ v: number }>({ path, shutdownRegister: fakeRegister().register, pool })
  assert.equal(await store.load(), undefined)
  await store.save({ v: 1 })
  assert.throws(() => readFileSync(nowhere), { code: 'ENOENT' })
  assert.deepEqual(await store.load(), { v: 1 })
  await store.close()
})
