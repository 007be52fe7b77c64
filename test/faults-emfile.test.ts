import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { fixture, hasCommand, lastJson, run } from './rel-helpers.js'

test('out of file descriptors (EMFILE under ulimit -n 64): 30 stores saving at once wait for descriptors, and none loses its data', { skip: hasCommand('bash') ? undefined : 'bash is needed for ulimit' }, async () => {
  const dir = tempDir('offload-store-emfile-')
  const stores = 30
  const result = await run('bash', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${fixture('emfile-child.js')}" "${dir}" ${stores}`])
  const out = lastJson<{ emfile: boolean, held: number, earlyWrites: number, failures: string[], contents: unknown[] }>(result)
  assert.equal(out.emfile, true, 'the child ran out of descriptors')
  assert.ok(out.held > 0)
  assert.deepEqual(out.failures, [])
  assert.equal(out.earlyWrites, 0, 'no write could finish while every descriptor was taken: they waited')
  assert.deepEqual(out.contents, Array.from({ length: stores }, (_, i) => ({ i, v: 2 })))
})
