import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { KeyedStore, Store, WriterPool } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'
import { startOwner } from './ownership-helpers.js'
import { isRoot } from './rel-helpers.js'

const dir = tempDir('offload-store-aliases-')
const pool = new WriterPool({ maxThreads: 1 })
after(async () => { await pool.close() })
let n = 0

const cannotMount = isRoot ? undefined : 'needs root for a bind mount'

/** A directory with a file in it, and every other name that reaches the same directory. */
function aliased (): { real: string, aliases: Record<string, string> } {
  const real = join(dir, `real${n++}`)
  mkdirSync(real)
  const link = `${real}-link`
  symlinkSync(real, link)
  const aliases: Record<string, string> = { 'a symlinked directory': link, '/proc/self/root/...': `/proc/self/root${real}` }
  if (cannotMount === undefined) {
    const bind = `${real}-bind`
    mkdirSync(bind)
    const mounted = spawnSync('mount', ['--bind', real, bind], { encoding: 'utf8' })
    assert.equal(mounted.status, 0, mounted.stderr)
    after(() => { spawnSync('umount', ['-l', bind]) })
    aliases['a bind mount'] = bind
  }
  return { real, aliases }
}

const open = (path: string, lockTimeout?: number): Store => new Store({ path, shutdownRegister: fakeRegister().register, pool, ...(lockTimeout === undefined ? {} : { lockTimeout }) })

test('in one process, a second store on any other name of the directory throws ERR_STORE_PATH_IN_USE', async () => {
  const { real, aliases } = aliased()
  const first = open(join(real, 'state.json'))
  await first.save({ v: 1 })
  for (const [what, alias] of Object.entries(aliases)) {
    assert.throws(() => open(join(alias, 'state.json')), { code: 'ERR_STORE_PATH_IN_USE' }, `${what} was not refused`)
  }
  await first.close()
  // Closed, the file can be owned under another name.
  const second = open(join(aliases['a symlinked directory'] ?? '', 'state.json'))
  assert.deepEqual(await second.load(), { v: 1 })
  await second.close()
})

test('in one process, a store in a directory not created yet is refused under another name of its nearest existing ancestor', async () => {
  const { real, aliases } = aliased()
  const first = open(join(real, 'new', 'state.json'))
  for (const [what, alias] of Object.entries(aliases)) {
    assert.throws(() => open(join(alias, 'new', 'state.json')), { code: 'ERR_STORE_PATH_IN_USE' }, `${what} was not refused`)
  }
  await first.save({ v: 1 })
  assert.deepEqual(JSON.parse(readFileSync(join(real, 'new', 'state.json'), 'utf8')), { v: 1 })
  await first.close()
})

test("a Store on a KeyedStore's journal is refused: ERR_STORE_PATH_IN_USE in one process", async () => {
  const path = join(dir, `keyed${n++}.json`)
  const keyed = new KeyedStore({ path, shutdownRegister: fakeRegister().register, journal: true })
  await keyed.load()
  keyed.set('a', 1)
  await keyed.saveNow()
  assert.throws(() => open(`${path}.journal`), { code: 'ERR_STORE_PATH_IN_USE' })
  assert.throws(() => open(`${path}.journal.journal`), { code: 'ERR_STORE_PATH_IN_USE' })
  await keyed.close()
})

test('a file with a second name (a hard link) is refused, ERR_STORE_PATH_IN_USE, and left as it was', () => {
  const path = join(dir, `linked${n++}.json`)
  writeFileSync(path, '{"v":1}')
  linkSync(path, `${path}.other`)
  for (const name of [path, `${path}.other`]) {
    assert.throws(() => open(name), (err: unknown) => {
      assert.equal((err as { code: string }).code, 'ERR_STORE_PATH_IN_USE')
      assert.match((err as Error).message, /2 names \(hard links\)/)
      return true
    })
  }
  assert.equal(readFileSync(path, 'utf8'), '{"v":1}')
})

test('the names stores keep beside their files (lock files, temp files) cannot be opened as stores: ERR_STORE_INVALID_OPTION', () => {
  for (const name of ['.state.json.lock', '.state.json.0123456789abcdef.tmp']) {
    assert.throws(() => open(join(dir, name)), { code: 'ERR_STORE_INVALID_OPTION' }, name)
  }
})

test('across two processes, every other name of an owned file meets the owner: ERR_STORE_LOCKED naming its pid', { timeout: 60_000 }, async () => {
  const { real, aliases } = aliased()
  const path = join(real, 'state.json')
  const owner = await startOwner('keyed-journal', path)
  assert.equal((await owner.ask({ op: 'load' })).ok, true)
  await owner.ask({ op: 'set', key: 'a', value: 1 })
  await owner.ask({ op: 'saveNow' })
  const names: Record<string, string> = { 'the same path': path, "the owner's journal": `${path}.journal` }
  for (const [what, alias] of Object.entries(aliases)) names[what] = join(alias, 'state.json')
  for (const [what, name] of Object.entries(names)) {
    const store = open(name, 50)
    await assert.rejects(store.load(), (err: unknown) => {
      assert.equal((err as { code: string }).code, 'ERR_STORE_LOCKED', `${what}: ${(err as Error).message}`)
      assert.equal((err as { holder?: { pid: number } }).holder?.pid, owner.pid, what)
      return true
    })
    await assert.rejects(store.save({ intruder: what }), { code: 'ERR_STORE_LOCKED' }, what)
    await store.close().catch(() => {})
  }
  await owner.ask({ op: 'exit' })
  await owner.exited
  const reader = new KeyedStore({ path, shutdownRegister: fakeRegister().register, journal: true })
  assert.deepEqual(Object.fromEntries(await reader.load()), { a: 1 })
  await reader.close()
})

test('across two processes, a hard link made to an owned file is refused: ERR_STORE_PATH_IN_USE', { timeout: 30_000 }, async () => {
  const path = join(dir, `owned${n++}.json`)
  const owner = await startOwner('store', path)
  assert.equal((await owner.ask({ op: 'save', value: { v: 1 } })).ok, true)
  linkSync(path, `${path}.second-name`)
  assert.throws(() => open(`${path}.second-name`, 50), { code: 'ERR_STORE_PATH_IN_USE' })
  await owner.ask({ op: 'exit' })
})
