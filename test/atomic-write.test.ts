import assert from 'node:assert/strict'
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { test } from 'node:test'
import { atomicWriteSync, atomicWriteSyncForTest, directoryModeFor, tempPathFor } from '../workers/atomic-write.js'
import { codecs, Store } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `a${n++}.json`)
const temps = (where: string): string[] => readdirSync(where).filter((name) => name.endsWith('.tmp'))

test('the file gets mode 0o600 by default, whatever the umask', async (t) => {
  const old = process.umask(0o000)
  t.after(() => process.umask(old))
  const store = new Store({ path: file(), shutdownRegister: fakeRegister().register })
  await store.save({ secret: true })
  assert.equal(statSync(store.path).mode & 0o777, 0o600)
  await store.close()
})

test('an explicit mode is applied exactly, even where the umask would strip bits', async (t) => {
  const old = process.umask(0o077)
  t.after(() => process.umask(old))
  const store = new Store({ path: file(), shutdownRegister: fakeRegister().register, mode: 0o644 })
  await store.save({ public: true })
  assert.equal(statSync(store.path).mode & 0o777, 0o644)
  await store.close()
})

test('missing parent directories are created, searchable where the file mode grants read', async () => {
  const path = join(dir, `deep${n++}`, 'er', 'file.json')
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.save([1])
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), [1])
  assert.equal(directoryModeFor(0o600), 0o700)
  assert.equal(directoryModeFor(0o644), 0o755)
  await store.close()
})

test('a failed write removes its temp file and leaves the previous file intact (target is a directory)', async () => {
  const where = join(dir, `fail${n++}`)
  mkdirSync(join(where, 'target.json'), { recursive: true })
  assert.throws(() => { atomicWriteSync(join(where, 'target.json'), 'x', 0o600, 'full') }, /EISDIR|ENOTEMPTY|EEXIST/)
  assert.deepEqual(temps(where), [])
})

test('a store whose target is a directory rejects ERR_STORE_WRITE and leaves no temp file', async () => {
  const where = join(dir, `faildir${n++}`)
  const path = join(where, 'target.json')
  mkdirSync(path, { recursive: true })
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await assert.rejects(store.save({}), (err: unknown) => {
    assert.equal((err as { code: string }).code, 'ERR_STORE_WRITE')
    assert.ok((err as Error).message.includes(path))
    assert.ok(['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(((err as Error).cause as NodeJS.ErrnoException).code ?? ''))
    return true
  })
  assert.deepEqual(temps(where), [])
  // The unsaved value is kept for a retry, so close() tries it once more and reports the failure.
  await assert.rejects(store.close(), { code: 'ERR_STORE_WRITE' })
})

test('temp names are hidden siblings with 64 random bits, never repeated', () => {
  const target = join(dir, 'settings.json')
  const names = new Set<string>()
  for (let i = 0; i < 1000; i++) names.add(tempPathFor(target))
  assert.equal(names.size, 1000)
  for (const name of names) assert.match(basename(name), /^\.settings\.json\.[0-9a-f]{16}\.tmp$/)
})

test('a temp name for a 255-byte file name still fits NAME_MAX', async () => {
  const longName = 'é'.repeat(120) + 'x'.repeat(15) // 255 bytes in UTF-8
  assert.equal(Buffer.byteLength(longName), 255)
  assert.ok(Buffer.byteLength(basename(tempPathFor(join(dir, longName)))) <= 255)
  const where = join(dir, `long${n++}`)
  const store = new Store({ path: join(where, longName), shutdownRegister: fakeRegister().register })
  await store.save({ long: true })
  assert.deepEqual(JSON.parse(readFileSync(join(where, longName), 'utf8')), { long: true })
  await store.close()
})

test('a symlink planted at the temp name is never followed: the write fails and its target is unchanged', () => {
  const where = join(dir, `plant${n++}`)
  mkdirSync(where)
  const outside = join(dir, `outside${n++}.txt`)
  writeFileSync(outside, 'untouched')
  const target = join(where, 'data.json')
  const temp = tempPathFor(target)
  symlinkSync(outside, temp)
  assert.throws(() => { atomicWriteSyncForTest(target, 'attacker wins', 0o600, 'full', { temp }) }, { code: 'EEXIST' })
  assert.equal(readFileSync(outside, 'utf8'), 'untouched')
  assert.ok(lstatSync(temp).isSymbolicLink(), 'the planted link is not ours to remove')
})

test('when the target path is a symlink, the link itself is replaced by the new file; its old target is unchanged', async () => {
  const where = join(dir, `link${n++}`)
  mkdirSync(where)
  const elsewhere = join(dir, `elsewhere${n++}.json`)
  writeFileSync(elsewhere, '"old"')
  const path = join(where, 'data.json')
  symlinkSync(elsewhere, path)
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.save('new')
  assert.equal(lstatSync(path).isSymbolicLink(), false)
  assert.equal(readFileSync(path, 'utf8'), '"new"')
  assert.equal(readFileSync(elsewhere, 'utf8'), '"old"')
  await store.close()
})

test('a reader polling during writes only ever sees a complete old or new version', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: fakeRegister().register, codec: codecs.raw() })
  const size = 1 << 20
  await store.save('a'.repeat(size))
  let reads = 0
  const state = { done: false }
  const reader = (async () => {
    const { readFile } = await import('node:fs/promises')
    while (!state.done) {
      const text = await readFile(path, 'utf8')
      reads++
      assert.equal(text.length, size, 'never a partial file')
      assert.ok(text === 'a'.repeat(size) || text === 'b'.repeat(size) || text === 'c'.repeat(size), 'never a mix')
    }
  })()
  for (let i = 0; i < 20; i++) await store.save(['b', 'c'][i % 2]?.repeat(size) ?? '')
  state.done = true
  await reader
  assert.ok(reads > 0)
  assert.deepEqual(temps(dir).filter((name) => name.includes(basename(path))), [])
  await store.close()
})

test('a directory removed after a write is created again by the next write', async () => {
  const where = join(dir, `gone${n++}`)
  const path = join(where, 'data.json')
  const store = new Store({ path, shutdownRegister: fakeRegister().register })
  await store.save({ v: 1 })
  rmSync(where, { recursive: true })
  await store.save({ v: 2 })
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 })
  await store.close()
})
