import assert from 'node:assert/strict'
import { chownSync, linkSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { openJournaled } from './journal-helpers.js'
import { isRoot } from './rel-helpers.js'

// A journal path another user prepared in a shared directory is never written through or reused.

const dir = tempDir()
let n = 0
function where (): string {
  const folder = join(dir, `p${n++}`)
  mkdirSync(folder, { mode: 0o777 })
  return join(folder, 'map.json')
}

async function journaledSaves (path: string): Promise<{ error?: Error & { code?: string } }> {
  const store = openJournaled<string>(path)
  try {
    await store.load()
    store.set('secret', 'token-1')
    await store.saveNow()
    store.set('secret2', 'token-2')
    await store.saveNow()
    return {}
  } catch (err) {
    return { error: err as Error & { code?: string } }
  } finally {
    await store.close().catch(() => {})
  }
}

test('a hard link planted at <path>.journal to a file outside the directory: that file stays byte-identical, and the store refuses with a coded error', async () => {
  const path = where()
  const outside = join(dir, `outside${n++}.txt`)
  writeFileSync(outside, 'precious contents\n', { mode: 0o644 })
  writeFileSync(path, '{}')
  linkSync(outside, `${path}.journal`)
  const { error } = await journaledSaves(path)
  assert.equal(readFileSync(outside, 'utf8'), 'precious contents\n')
  assert.equal(statSync(outside).mode & 0o777, 0o644)
  assert.ok(error !== undefined, 'the store refused the planted journal')
  assert.match(error.code ?? '', /^ERR_STORE_/)
  assert.match(error.message, /map\.json/)
  assert.match(error.message, /link/)
})

test('a journal owned by another user is not reused: the store refuses with a coded error naming the owner', { skip: isRoot ? false : 'needs root to chown a file to uid 65534' }, async () => {
  const path = where()
  writeFileSync(path, '{}')
  writeFileSync(`${path}.journal`, '', { mode: 0o666 })
  chownSync(`${path}.journal`, 65534, 65534)
  const { error } = await journaledSaves(path)
  assert.ok(error !== undefined, 'the store refused the planted journal')
  assert.match(error.code ?? '', /^ERR_STORE_/)
  assert.match(error.message, /owned by uid 65534/)
  assert.equal(statSync(`${path}.journal`).uid, 65534)
  assert.equal(readFileSync(`${path}.journal`).byteLength, 0, 'nothing was written to it')
})

test('a journal the store creates is a fresh file of its own, mode 0o600, with one link', async () => {
  const path = where()
  const { error } = await journaledSaves(path)
  assert.equal(error, undefined)
  const stat = statSync(`${path}.journal`)
  assert.equal(stat.mode & 0o777, 0o600)
  assert.equal(stat.nlink, 1)
  assert.equal(stat.uid, process.geteuid?.())
})
