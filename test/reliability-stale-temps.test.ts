import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { Store, WriterPool } from '../src/index.js'
import { isTempNameFor, tempPathFor } from '../workers/atomic-write.js'
import { fakeRegister, tempDir } from './helpers.js'

const dir = tempDir('offload-store-stale-')
const pool = new WriterPool({ maxThreads: 1 })
test.after(async () => { await pool.close() })

test('temp files a crash left for this target are removed by its next successful write; nothing else is', async () => {
  const where = join(dir, 'a')
  mkdirSync(where)
  const target = join(where, 'state.json')
  const stale = ['.state.json.0123456789abcdef.tmp', '.state.json.fedcba9876543210.tmp']
  const others = [
    '.state.json.tmp', // not our pattern
    '.state.json.0123456789ABCDEF.tmp', // upper-case hex: not ours
    '.state.json.0123456789abcde.tmp', // 15 hex digits
    '.state.json.0123456789abcdef.tmp.bak',
    '.other.json.0123456789abcdef.tmp', // another target's temp
    '.state.json.x.0123456789abcdef.tmp', // the temp of "state.json.x"
    'state.json.0123456789abcdef.tmp' // not hidden
  ]
  for (const name of [...stale, ...others]) writeFileSync(join(where, name), 'left over')
  const store = new Store({ path: target, shutdownRegister: fakeRegister().register, pool })
  await store.save({ v: 1 })
  assert.deepEqual(readdirSync(where).sort(), [...others, '.state.json.lock', 'state.json'].sort())
  await store.close()
})

test('stale temps of a 255-byte name (whose temp names are truncated) are recognised and removed', async () => {
  const where = join(dir, 'b')
  mkdirSync(where)
  const name = 'é'.repeat(120) + 'x'.repeat(15)
  const target = join(where, name)
  const stale = tempPathFor(target)
  writeFileSync(stale, 'left over')
  assert.ok(isTempNameFor(target, stale.slice(where.length + 1)))
  const store = new Store({ path: target, shutdownRegister: fakeRegister().register, pool })
  await store.save({ v: 1 })
  assert.deepEqual(readdirSync(where).filter((entry) => !entry.endsWith('.lock')), [name])
  await store.close()
})
