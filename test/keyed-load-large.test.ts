import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { KeyedStore, type KeyedStoreOptions, Store } from '../src/index.js'
import { splitMembers } from '../workers/json-members.js'
import { fakeRegister, longestGap, recordingLogger, tempDir } from './helpers.js'

// KeyedStore.load() of a large JSON file: parsed on the main thread a slice at a time, from runs of
// members the pinned worker finds, with the entries, order and errors one JSON.parse would give.

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `big${n++}.json`)
const open = <V>(path: string, extra: Partial<KeyedStoreOptions<V>> = {}): KeyedStore<string, V> =>
  new KeyedStore<string, V>({ path, shutdownRegister: fakeRegister().register, delayMs: 60_000, ...extra })

/** A JSON object text of about `bytes` bytes whose members hold every shape the scan must step over. */
function awkwardText (bytes: number): string {
  const parts: string[] = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const key = i % 7 === 0 ? `k"${i}\\,:{}[]` : i % 11 === 0 ? `ключ ${i} 🗝` : `key${i}`
    const value = i % 5 === 0
      ? { text: `a "quoted" }, ] and : in ${i}`, list: [i, [i + 1, { deep: '{[' }], 'x,y'], none: null, yes: true }
      : i % 3 === 0 ? `é${i}\u2028\\` : i % 2 === 0 ? [] : -i * 1.5e-3
    const member = `${JSON.stringify(key)} :\n ${JSON.stringify(value, null, i % 4 === 0 ? 1 : 0)}`
    parts.push(member)
    size += member.length
  }
  // A repeated key (the last value wins, at the first one's place) and one named __proto__.
  parts.push('"key1":"again"', '"__proto__":{"polluted":true}')
  return `\n {${parts.join(' ,\n')}}\t\n`
}

/** The entries the runs of a split parse to, as the main thread reads them; throws where they do not. */
function entriesOfSplit (bytes: Uint8Array): Map<string, unknown> | undefined {
  const split = splitMembers(bytes, 4096)
  if (split === undefined) return undefined
  const entries = new Map<string, unknown>()
  for (let at = 0; at < split.runs.length; at += 3) {
    const list = JSON.parse(`[${Buffer.from(split.members.subarray(split.runs[at], split.runs[at + 1])).toString()}]`) as unknown[]
    assert.equal(list.length, 2 * (split.runs[at + 2] ?? 0))
    for (let i = 0; i < list.length; i += 2) entries.set(list[i] as string, list[i + 1])
  }
  return entries
}

test("the pinned worker's scan cuts a file into runs whose members are the file's, and refuses what it cannot cut in file order", () => {
  const text = awkwardText(100_000)
  const expected = Object.entries(JSON.parse(text) as object)
  assert.deepEqual([...entriesOfSplit(Buffer.from(text)) ?? []], expected)
  assert.deepEqual([...entriesOfSplit(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])) ?? []], expected)
  assert.deepEqual([...entriesOfSplit(Buffer.from(' { } ')) ?? ['not split']], [])
  for (const refused of ['{"1":1}', '{"\\u0031":1}', '[1]', '{"a":1', '{"a":1}x', '{"a" 1}', '{"a":1,2}', '{"a":[1}', '"a"', '']) {
    assert.equal(splitMembers(Buffer.from(refused), 4096), undefined, refused)
  }
})

async function viaStore (path: string): Promise<Record<string, unknown>> {
  const plain = new Store<Record<string, unknown>>({ path, shutdownRegister: fakeRegister().register })
  const value = await plain.load()
  await plain.close()
  return value ?? {}
}

test('load() of a large file gives the entries, order and values one JSON.parse gives, and the worker writes them back unchanged', async () => {
  const path = file()
  const text = awkwardText(600_000)
  writeFileSync(path, text)
  const expected = JSON.parse(text) as Record<string, unknown>
  const plainKeys = Object.keys(await viaStore(path))
  const store = open<unknown>(path)
  const map = await store.load()
  assert.deepEqual([...map.keys()], Object.keys(expected))
  assert.deepEqual([...map.keys()], plainKeys)
  for (const [key, value] of map) assert.deepEqual(value, expected[key], key)
  assert.equal(map.get('key1'), 'again')
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined)
  // The worker's mirror came from the same bytes: one change saved gives the whole state back.
  store.set('key2', 'changed')
  await store.saveNow()
  await store.close()
  assert.equal(readFileSync(path, 'utf8'), JSON.stringify({ ...Object.fromEntries(Object.entries(expected)), key2: 'changed' }))
})

test('load() of a large file with a byte order mark loads it, as Store.load() does', async () => {
  const path = file()
  const text = awkwardText(300_000)
  writeFileSync(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))
  const store = open<unknown>(path)
  const map = await store.load()
  await store.close()
  assert.deepEqual([...map.keys()], Object.keys(JSON.parse(text) as object))
  assert.deepEqual([...map.keys()], Object.keys(await viaStore(path)))
})

test('load() of a large file whose keys are array indexes keeps the order JSON.parse gives them (indexes first, ascending)', async () => {
  const path = file()
  const members: string[] = []
  for (let i = 0; i < 30_000; i++) members.push(`"b${i}":${i}`, `"${30_000 - i}":"n${i}"`)
  writeFileSync(path, `{${members.join(',')}}`)
  const store = open<unknown>(path)
  const map = await store.load()
  await store.close()
  const keys = [...map.keys()]
  assert.deepEqual(keys, Object.keys(await viaStore(path)))
  assert.equal(keys[0], '1')
  assert.equal(map.get('30000'), 'n0')
})

test('load() of a large file that is not valid JSON fails with the error JSON.parse gives for the whole file', async () => {
  const good = awkwardText(400_000)
  const cases: Array<[string, Buffer]> = [
    ['a stray character deep inside', Buffer.from(good.replace('"key300"', '"key300"x'))],
    ['a trailing comma', Buffer.from(good.replace(/}\s*$/, ',}'))],
    ['a member without a key', Buffer.from(good.replace('"key300"', '300'))],
    ['text after the object', Buffer.from(`${good} {}`)],
    ['an array at the top', Buffer.from(`[${good}]`)],
    ['invalid UTF-8 in a value', Buffer.concat([Buffer.from(good.slice(0, good.lastIndexOf('}'))), Buffer.from(',"bad":"'), Buffer.from([0xff]), Buffer.from('"}')])]
  ]
  for (const [what, bytes] of cases) {
    const path = file()
    writeFileSync(path, bytes)
    let whole: string
    try {
      const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
      whole = `a keyed store's file must hold an object of entries, found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`
    } catch (err) {
      whole = (err as Error).message
    }
    const store = open<unknown>(path)
    await assert.rejects(store.load(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_STORE_DECODE', what)
      assert.ok(err.message.endsWith(whole), `${what}: ${err.message} should end with ${whole}`)
      return true
    })
    await store.close()
    assert.deepEqual(readFileSync(path), bytes, `${what}: the file is left as it was`)
  }
})

test("onCorrupt: 'quarantine' moves a large undecodable file aside and starts empty", async () => {
  const sub = tempDir()
  const path = join(sub, 'big.json')
  writeFileSync(path, awkwardText(400_000).replace('"key300"', '"key300"x'))
  const store = open<unknown>(path, { onCorrupt: 'quarantine', logger: recordingLogger() })
  assert.equal((await store.load()).size, 0)
  await store.close()
  assert.equal(existsSync(path), false)
  assert.equal(readdirSync(sub).filter((name) => name.startsWith('big.json.corrupt.')).length, 1)
})

test('load() of a large snapshot replays its journal over it', async () => {
  const path = file()
  const entries = JSON.parse(awkwardText(400_000)) as Record<string, unknown>
  const first = open<unknown>(path, { journal: true })
  await first.load()
  for (const [key, value] of Object.entries(entries)) first.set(key, value)
  await first.saveNow() // the snapshot
  first.set('key2', 'from the journal')
  first.delete('key4')
  first.set('added', 1)
  await first.saveNow() // a journal record
  await first.close()
  assert.ok(existsSync(`${path}.journal`))
  const second = open<unknown>(path, { journal: true })
  const map = await second.load()
  await second.close()
  const { key4: _gone, ...rest } = entries
  assert.deepEqual(Object.fromEntries(map), { ...rest, key2: 'from the journal', added: 1 })
  assert.deepEqual([...map.keys()], [...Object.keys(rest), 'added'])
})

test("load() of a file of 200,000 entries never blocks the event loop for more than a third of Store.load()'s one JSON.parse of it", async (t) => {
  const path = file()
  const members: string[] = []
  for (let i = 0; i < 200_000; i++) members.push(`"e${i}":{"id":${i},"name":"entry ${i}","on":${i % 2 === 0}}`)
  writeFileSync(path, `{${members.join(',')}}`)
  const storeStalls: number[] = []
  const keyedStalls: number[] = []
  // Interleaved, best of three each, so a burst of load on the machine hits both alike.
  for (let i = 0; i < 3; i++) {
    storeStalls.push(await longestGap(async () => await viaStore(path), 1))
    const store = open<unknown>(path)
    keyedStalls.push(await longestGap(async () => await store.load(), 1))
    assert.equal(store.size, 200_000)
    await store.close()
  }
  const ratio = Math.min(...keyedStalls) / Math.min(...storeStalls)
  t.diagnostic(`longest stall ${keyedStalls.map(Math.round).join('/')} ms against ${storeStalls.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 1 / 3, `KeyedStore.load() stalled the loop ${ratio.toFixed(2)}x as long as Store.load() (${keyedStalls.map(Math.round).join('/')} against ${storeStalls.map(Math.round).join('/')} ms)`)
})
