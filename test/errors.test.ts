import assert from 'node:assert/strict'
import { test } from 'node:test'
import { errorCodes, StoreError } from '../src/index.js'

for (const [code, ErrorClass] of Object.entries(errorCodes)) {
  test(`${ErrorClass.name} has code ${code}, names the store and path, and keeps its cause`, () => {
    const cause = new Error('underlying')
    const err = new ErrorClass('went wrong', { store: 'settings', path: '/var/lib/app/settings.json', cause })
    assert.ok(err instanceof StoreError)
    assert.ok(err instanceof Error)
    assert.equal(err.code, code)
    assert.equal(err.name, ErrorClass.name)
    assert.equal(err.store, 'settings')
    assert.equal(err.path, '/var/lib/app/settings.json')
    assert.equal(err.cause, cause)
    assert.equal(err.message, 'store "settings" (/var/lib/app/settings.json): went wrong')
  })
}

test('a store named by its path is not named twice in the message', () => {
  const [, ErrorClass] = Object.entries(errorCodes)[0] ?? []
  assert.ok(ErrorClass !== undefined)
  const err = new ErrorClass('x', { store: '/a/b.json', path: '/a/b.json' })
  assert.equal(err.message, 'store "/a/b.json": x')
})

test('the error table of docs/api.md lists exactly the codes the library defines', async () => {
  const { readFileSync } = await import('node:fs')
  const api = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8')
  const start = api.indexOf('\n## Errors\n')
  assert.ok(start >= 0, 'docs/api.md has an Errors section')
  const end = api.indexOf('\n## ', start + 1)
  const section = api.slice(start, end === -1 ? undefined : end)
  const documented = new Set([...section.matchAll(/^\| `(ERR_[A-Z_]+)` \| `(\w+)` \|/gm)].map((m) => `${m[1]}=${m[2]}`))
  const defined = new Set(Object.entries(errorCodes).map(([code, ErrorClass]) => `${code}=${ErrorClass.name}`))
  assert.deepEqual([...documented].sort(), [...defined].sort())
})
