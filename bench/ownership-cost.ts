// What ownership costs: per open (take and release the lock) for the OS lock the stores use and
// for proper-lockfile, and per save (a Store that owns its file against one in a build without
// ownership, when `--base <dir>` names such a build's dist/src/index.js). Prints one JSON line.
// Run: npm run build && node dist/bench/ownership-cost.js [--base /path/to/old/dist/src/index.js]
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import properLockfile from 'proper-lockfile'
import { closeLockFile, lockPathFor, openLockFile, thisHolder, tryLock, writeHolder } from '../src/lock-file.js'
import * as current from '../src/index.js'

const { values } = parseArgs({ options: { base: { type: 'string' }, opens: { type: 'string', default: '2000' }, saves: { type: 'string', default: '400' } } })
const opens = Number(values.opens)
const saves = Number(values.saves)
const dir = mkdtempSync(join(tmpdir(), 'offload-store-ownership-bench-'))

function median (samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

/** Median microseconds of `fn` over `n` runs, after 10% warm-up. */
async function time (n: number, fn: (i: number) => unknown): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < n * 1.1; i++) {
    const start = performance.now()
    await fn(i)
    if (i >= n * 0.1) samples.push((performance.now() - start) * 1000)
  }
  return Math.round(median(samples) * 10) / 10
}

const nativePath = join(dir, 'native.json')
const native = await time(opens, () => {
  const lockPath = lockPathFor(nativePath)
  const fd = openLockFile(lockPath, 0o600)
  if (!tryLock(fd, lockPath)) throw new Error('not locked')
  writeHolder(fd, thisHolder('bench'))
  closeLockFile(fd)
})
const properPath = join(dir, 'proper.json')
const proper = await time(opens, async () => {
  const release = await properLockfile.lock(properPath, { realpath: false })
  await release()
})
const properSync = await time(opens, () => {
  const release = properLockfile.lockSync(properPath, { realpath: false })
  release()
})
const silent = { error: () => {}, warn: () => {}, debug: () => {} }

// One build with ownership, and one without when --base names it, in this process, alternating
// which goes first: a Store's construct + close (per open), and a save (per save).
type Module = typeof current
const builds: Array<[string, Module]> = [['ownership', current]]
if (values.base !== undefined) builds.push(['base', await import(pathToFileURL(values.base).href + '?base') as Module])
const perOpen: Record<string, number[]> = {}
const perFirstOpen: Record<string, number[]> = {}
const perSave: Record<string, number[]> = {}
const pools = builds.map(([, build]) => new build.WriterPool({ maxThreads: 1 }))
const stores = builds.map(([name, build], b) => new build.Store<{ n: number }>({ path: join(dir, `save-${name}.json`), shutdownRegister: () => {}, logger: silent, pool: pools[b] as never, durability: 'none' }))
for (let round = 0; round < 6; round++) {
  const order = round % 2 === 0 ? [...builds.entries()] : [...builds.entries()].reverse()
  for (const [b, [name, build]] of order) {
    const store = stores[b]
    if (store === undefined) continue
    ;(perSave[name] ??= []).push(await time(saves, async (i) => { await store.save({ n: i }) }))
    // The same file each time, as a process reopens its stores: the lock file is there already.
    ;(perOpen[name] ??= []).push(await time(Math.min(opens, 300), async () => {
      const opened = new build.Store({ path: join(dir, `open-${name}.json`), shutdownRegister: () => {}, logger: silent })
      await opened.close()
    }))
    // A file never opened before: the lock file is created.
    ;(perFirstOpen[name] ??= []).push(await time(Math.min(opens, 300), async (i) => {
      const opened = new build.Store({ path: join(dir, `first-${name}-${round}-${i}.json`), shutdownRegister: () => {}, logger: silent })
      await opened.close()
    }))
  }
}
for (const store of stores) await store.close()
for (const pool of pools) await pool.close()
rmSync(dir, { recursive: true, force: true })
const require = createRequire(import.meta.url)
process.stdout.write(JSON.stringify({
  node: process.version,
  perOpenMicros: { osLock: native, properLockfile: proper, properLockfileSync: properSync },
  storeConstructAndCloseMicros: Object.fromEntries(Object.entries(perOpen).map(([name, runs]) => [name, median(runs)])),
  storeFirstConstructAndCloseMicros: Object.fromEntries(Object.entries(perFirstOpen).map(([name, runs]) => [name, median(runs)])),
  perSaveMicros: Object.fromEntries(Object.entries(perSave).map(([name, runs]) => [name, median(runs)])),
  versions: { 'fs-native-extensions': (require('fs-native-extensions/package.json') as { version: string }).version, 'proper-lockfile': (require('proper-lockfile/package.json') as { version: string }).version }
}) + '\n')
