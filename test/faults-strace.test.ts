import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { cannotStrace, fixture, lastJson, parseStrace, run, type Syscall, tempsIn } from './rel-helpers.js'

// Traced and fault-injected saves: a child process saves once under strace, which logs the system
// calls (to check their order) or makes one of them fail with EIO (to check what the store does).

const dir = tempDir('offload-store-strace-')
let n = 0
const TRACED = 'openat,open,fchmod,write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,close'

interface Outcome { ok: boolean, code?: string, message?: string, cause?: { code?: string, syscall?: string } }

async function tracedSave (inject: string | undefined): Promise<{ outcome: Outcome, calls: Syscall[], where: string, path: string }> {
  const where = join(dir, `s${n++}`)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(where)
  const path = join(where, 'state.json')
  writeFileSync(path, '{"v":1}')
  const log = join(dir, `trace${n++}.log`)
  const args = ['-f', '-o', log, '-e', `trace=${TRACED}`, ...(inject === undefined ? [] : ['-e', `inject=${inject}`]), process.execPath, fixture('save-child.js'), path, '{"v":2}']
  const result = await run('strace', args)
  const outcome = lastJson<Outcome>(result)
  // Keep only the calls on our directory and the descriptors opened there.
  const all = parseStrace(readFileSync(log, 'utf8'))
  const fds = new Set<string>()
  const calls: Syscall[] = []
  for (const call of all) {
    const fd = /^(\d+)/.exec(call.args)?.[1]
    if (call.name === 'openat' && call.args.includes(`"${where}`)) {
      fds.add(call.result.split(' ')[0] ?? '')
      calls.push(call)
    } else if (['fchmod', 'write', 'pwrite64', 'writev', 'fsync', 'fdatasync'].includes(call.name) && fd !== undefined && fds.has(fd)) {
      calls.push(call)
    } else if (call.name === 'close' && fd !== undefined && fds.has(fd)) {
      fds.delete(fd)
      calls.push(call)
    } else if (call.args.includes(`"${where}`)) {
      calls.push(call)
    }
  }
  return { outcome, calls, where, path }
}

const index = (calls: Syscall[], predicate: (call: Syscall) => boolean, from = 0): number => {
  const i = calls.slice(from).findIndex(predicate)
  return i < 0 ? -1 : i + from
}
const fdOf = (call: Syscall | undefined): string => (call?.result ?? '').split(' ')[0] ?? ''

test('durability order: the temp file is created O_EXCL|O_NOFOLLOW, chmod-ed before any byte, fsync-ed before the rename, and the directory is fsync-ed after it', { skip: cannotStrace }, async () => {
  const { outcome, calls, path } = await tracedSave(undefined)
  assert.equal(outcome.ok, true)
  const open = index(calls, (c) => c.name === 'openat' && /\.tmp"/.test(c.args))
  assert.ok(open >= 0, 'the temp file is opened')
  const openCall = calls[open]
  assert.match(openCall?.args ?? '', /O_CREAT\|O_EXCL\|O_NOFOLLOW/)
  const fd = fdOf(openCall)
  const temp = /"([^"]+\.tmp)"/.exec(openCall?.args ?? '')?.[1] ?? ''
  const chmod = index(calls, (c) => c.name === 'fchmod' && c.args.startsWith(`${fd},`), open)
  const firstWrite = index(calls, (c) => /^p?writev?$|^pwrite64$/.test(c.name) && c.args.startsWith(`${fd},`), open)
  const fsync = index(calls, (c) => (c.name === 'fsync' || c.name === 'fdatasync') && c.args === fd, open)
  const rename = index(calls, (c) => c.name.startsWith('rename') && c.args.includes(`"${temp}"`) && c.args.includes(`"${path}"`))
  const dirOpen = index(calls, (c) => c.name === 'openat' && c.args.includes('O_DIRECTORY') && !c.args.includes('O_NONBLOCK'), rename)
  const dirFsync = index(calls, (c) => c.name === 'fsync' && c.args === fdOf(calls[dirOpen]), dirOpen)
  const order = calls.map((c) => `${c.name}(${c.args}) = ${c.result}`).join('\n')
  assert.ok(chmod > open && firstWrite > chmod, `fchmod comes before the first write:\n${order}`)
  assert.ok(fsync > firstWrite, `fsync of the temp file after the writes:\n${order}`)
  assert.ok(rename > fsync, `the rename comes after the temp file's fsync:\n${order}`)
  assert.ok(dirOpen > rename && dirFsync > dirOpen, `the directory is fsync-ed after the rename:\n${order}`)
})

test('a failed fsync of the temp file abandons it (never fsync-ed again) and the write succeeds with a new temp file', { skip: cannotStrace }, async () => {
  const { outcome, calls, where, path } = await tracedSave('fsync:error=EIO:when=1')
  assert.equal(outcome.ok, true, outcome.message)
  const temps = calls.filter((c) => c.name === 'openat' && /\.tmp"/.test(c.args))
  assert.equal(temps.length, 2, 'a second, new temp file is written')
  assert.notEqual(/"([^"]+)"/.exec(temps[0]?.args ?? '')?.[1], /"([^"]+)"/.exec(temps[1]?.args ?? '')?.[1])
  const failed = calls.find((c) => c.name === 'fsync' && c.injected)
  assert.ok(failed !== undefined)
  const afterFailure = calls.slice(calls.indexOf(failed) + 1)
  // The same descriptor number may be reused by the next open; before that, no fsync of it again.
  const reopen = afterFailure.findIndex((c) => c.name === 'openat')
  assert.equal(afterFailure.slice(0, reopen).filter((c) => c.name === 'fsync').length, 0, 'no second fsync of the failed descriptor')
  assert.ok(afterFailure.some((c) => c.name === 'unlink' && c.args.includes(/"([^"]+)"/.exec(temps[0]?.args ?? '')?.[1] ?? '?')), 'the abandoned temp file is removed')
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 })
  assert.deepEqual(tempsIn(where), [])
})

test('fsync failing every time: ERR_STORE_WRITE with the EIO cause, previous file intact, no temp file', { skip: cannotStrace }, async () => {
  const { outcome, calls, where, path } = await tracedSave('fsync:error=EIO:when=1+')
  assert.equal(outcome.ok, false)
  assert.equal(outcome.code, 'ERR_STORE_WRITE')
  assert.equal(outcome.cause?.code, 'EIO')
  assert.equal(calls.filter((c) => c.name === 'fsync').length, 2, 'one fsync per temp file, two temp files, never more')
  assert.equal(readFileSync(path, 'utf8'), '{"v":1}')
  assert.deepEqual(tempsIn(where), [])
})

test('a failed directory fsync (after the rename) rejects ERR_STORE_DURABILITY_UNKNOWN: the new content is visible, no temp file', { skip: cannotStrace }, async () => {
  const { outcome, where, path } = await tracedSave('fsync:error=EIO:when=2')
  assert.equal(outcome.ok, false)
  assert.equal(outcome.code, 'ERR_STORE_DURABILITY_UNKNOWN')
  assert.equal(outcome.cause?.code, 'EIO')
  assert.match(outcome.message ?? '', /durability unknown/)
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 })
  assert.deepEqual(tempsIn(where), [])
})

test('a rename failing with EIO: ERR_STORE_WRITE with the EIO cause, previous file intact, no temp file', { skip: cannotStrace }, async () => {
  const { outcome, where, path } = await tracedSave('rename,renameat,renameat2:error=EIO:when=1')
  assert.equal(outcome.ok, false)
  assert.equal(outcome.code, 'ERR_STORE_WRITE')
  assert.equal(outcome.cause?.code, 'EIO')
  assert.equal(outcome.cause?.syscall, 'rename')
  assert.equal(readFileSync(path, 'utf8'), '{"v":1}')
  assert.deepEqual(tempsIn(where), [])
})

test('a temp file removed before the rename (ENOENT: another process cleaned it as stale) is retried once with a new temp file', { skip: cannotStrace }, async () => {
  const { outcome, calls, where, path } = await tracedSave('rename,renameat,renameat2:error=ENOENT:when=1')
  assert.equal(outcome.ok, true, outcome.message)
  assert.equal(calls.filter((c) => c.name === 'openat' && /\.tmp"/.test(c.args)).length, 2, 'a second, new temp file is written')
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { v: 2 })
  assert.deepEqual(tempsIn(where), [])
})
