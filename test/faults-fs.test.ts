import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, Store, WriterPool } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { cannotMount, fixture, hasCommand, isRoot, lastJson, mountTmpfs, run, tempsIn } from './rel-helpers.js'

// File-system faults: each must reject with a clear error, keep the previous file intact and
// readable, and leave no temp file behind.

const dir = tempDir('offload-store-faults-')
const pool = new WriterPool({ maxThreads: 1 })
test.after(async () => { await pool.close() })
let n = 0

interface Failure { code: string, message: string, cause?: NodeJS.ErrnoException }

async function expectWriteFailure (promise: Promise<void>, causeCode: string, message?: RegExp): Promise<Failure> {
  let failure: Failure | undefined
  await assert.rejects(promise, (err: unknown) => {
    failure = err as Failure
    assert.equal(failure.code, 'ERR_STORE_WRITE')
    assert.equal(failure.cause?.code, causeCode, `cause code of: ${failure.message}`)
    if (message !== undefined) assert.match(failure.message, message)
    return true
  })
  return failure as Failure
}

test('no space left (ENOSPC) on a full 1 MiB tmpfs: ERR_STORE_WRITE, previous file intact, no temp file', { skip: cannotMount }, async () => {
  const where = mountTmpfs(dir, `enospc${n++}`, '1m')
  const path = join(where, 'state.txt')
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.raw(), pool })
  await store.save('a'.repeat(300_000))
  // The old and the new file must exist together until the rename: 300 kB + 800 kB do not fit.
  await expectWriteFailure(store.save('b'.repeat(800_000)), 'ENOSPC')
  assert.equal(readFileSync(path, 'utf8'), 'a'.repeat(300_000))
  assert.deepEqual(tempsIn(where), [])
  // Fill what is left, then try again: still a clean failure.
  writeFileSync(join(where, 'filler'), Buffer.alloc(1))
  for (let size = 1 << 19; size >= 4096; size >>= 1) {
    try { writeFileSync(join(where, `filler${size}`), Buffer.alloc(size)) } catch {}
  }
  await expectWriteFailure(store.save('c'.repeat(100_000)), 'ENOSPC')
  assert.equal(readFileSync(path, 'utf8'), 'a'.repeat(300_000))
  assert.deepEqual(tempsIn(where), [])
  assert.equal(Buffer.from(await store.load() as Uint8Array).toString('utf8'), 'a'.repeat(300_000), 'load() still reads the previous file')
  await store.remove().catch(() => {})
  await store.close().catch(() => {})
})

test('a read-only file system (EROFS): ERR_STORE_WRITE, previous file intact and loadable', { skip: cannotMount }, async () => {
  const where = mountTmpfs(dir, `erofs${n++}`, '1m')
  const path = join(where, 'state.json')
  const store = new Store<{ v: number }>({ path, shutdownRegister: fakeRegister().register, pool })
  await store.save({ v: 1 })
  // The store holds its lock file open for writing, so the file system cannot be remounted
  // read-only under it: a read-only bind mount stacked on the directory gives the same EROFS.
  const bind = spawnSync('mount', ['--bind', where, where], { encoding: 'utf8' })
  assert.equal(bind.status, 0, bind.stderr)
  const remount = spawnSync('mount', ['-o', 'remount,ro,bind', where], { encoding: 'utf8' })
  assert.equal(remount.status, 0, remount.stderr)
  await expectWriteFailure(store.save({ v: 2 }), 'EROFS', /read-only/)
  assert.deepEqual(await store.load(), { v: 1 })
  assert.deepEqual(tempsIn(where), [])
  spawnSync('umount', [where]) // the read-only bind mount
  await store.close() // the kept value is written now that the file system is writable again
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 })
})

test('the parent path is a regular file (ENOTDIR or EEXIST): ERR_STORE_WRITE, that file untouched', async () => {
  const parent = join(dir, `plain${n++}.txt`)
  writeFileSync(parent, 'not a directory')
  const store = new Store({ path: join(parent, 'state.json'), shutdownRegister: fakeRegister().register, pool })
  await assert.rejects(store.save({ v: 1 }), (err: unknown) => {
    const e = err as Failure
    assert.equal(e.code, 'ERR_STORE_WRITE')
    assert.ok(['ENOTDIR', 'EEXIST'].includes(e.cause?.code ?? ''), e.message)
    return true
  })
  assert.equal(readFileSync(parent, 'utf8'), 'not a directory')
  await store.close().catch(() => {})
})

test('a single file bind-mounted over the target (rename gives EBUSY): the error says why and to mount the directory instead', { skip: cannotMount }, async () => {
  const where = join(dir, `bind${n++}`)
  mkdirSync(where)
  const source = join(dir, `bind-source${n++}.json`)
  writeFileSync(source, '{"v":1}')
  const path = join(where, 'state.json')
  writeFileSync(path, '')
  const bind = spawnSync('mount', ['--bind', source, path], { encoding: 'utf8' })
  assert.equal(bind.status, 0, bind.stderr)
  test.after(() => { spawnSync('umount', ['-l', path]) })
  const store = new Store<{ v: number }>({ path, shutdownRegister: fakeRegister().register, pool })
  await expectWriteFailure(store.save({ v: 2 }), 'EBUSY', /mount point.*mount the directory that holds the file instead/)
  assert.deepEqual(await store.load(), { v: 1 })
  assert.equal(readFileSync(source, 'utf8'), '{"v":1}')
  assert.deepEqual(tempsIn(where), [])
  await store.close().catch(() => {})
})

test('a 256-byte file name (ENAMETOOLONG): the error says how long the name is and what the limit is; no temp file', async () => {
  const where = join(dir, `name${n++}`)
  mkdirSync(where)
  const name = 'n'.repeat(251) + '.json'
  assert.equal(Buffer.byteLength(name), 256)
  const store = new Store({ path: join(where, name), shutdownRegister: fakeRegister().register, pool })
  await expectWriteFailure(store.save({ v: 1 }), 'ENAMETOOLONG', /256 bytes.*at most 255 bytes per name/)
  assert.deepEqual(tempsIn(where), [])
  await store.close().catch(() => {})
})

// The child runs as uid 65534: it must be able to read node and the compiled fixture, which it cannot
// when the checkout sits under a mode-0700 directory (root's home, a private temp dir).
const unprivilegedCannotRead = (): string | undefined => {
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', 'require("node:fs").accessSync(process.argv[1], require("node:fs").constants.R_OK)', fixture('save-child.js')], { stdio: 'ignore' })
  return probe.status === 0 ? undefined : 'uid 65534 cannot read the compiled fixtures (the checkout is under a directory it cannot enter, such as a mode-0700 home)'
}
const setprivMissing = !isRoot ? 'needs root to switch to an unprivileged user with setpriv' : !hasCommand('setpriv') ? 'setpriv is not installed' : unprivilegedCannotRead()

test('permission denied on the directory (EACCES, as uid 65534 through setpriv): ERR_STORE_WRITE, previous file intact', { skip: setprivMissing }, async () => {
  const where = join(dir, `eacces${n++}`)
  mkdirSync(where)
  chmodSync(dir, 0o755) // the unprivileged child must reach `where`, but not write in it
  const path = join(where, 'state.json')
  writeFileSync(path, '{"v":1}', { mode: 0o644 })
  const result = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, fixture('save-child.js'), path, '{"v":2}'])
  const out = lastJson<{ ok: boolean, code?: string, message?: string, cause?: { code?: string } }>(result)
  assert.equal(out.ok, false, result.stderr)
  assert.equal(out.code, 'ERR_STORE_WRITE')
  assert.equal(out.cause?.code, 'EACCES')
  assert.match(out.message ?? '', /permission denied/)
  assert.equal(readFileSync(path, 'utf8'), '{"v":1}')
  assert.deepEqual(tempsIn(where), [])
})
