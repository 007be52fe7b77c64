import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, KeyedStore } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

// With codecs.schema(), a journal record holds what the snapshot would hold: the codec's meaning.

const dir = tempDir()
let n = 0
const schema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name']
  }
}

async function roundTrip (journal: boolean): Promise<{ state: unknown, journalText: string }> {
  const path = join(dir, `s${n++}.json`)
  const open = (): KeyedStore<string, Record<string, unknown>> => new KeyedStore({ path, shutdownRegister: fakeRegister().register, codec: codecs.schema(schema), journal: journal ? { compactRatio: 1000 } : false, delayMs: 60_000 })
  const store = open()
  await store.load()
  store.set('seed', { name: 'seed', age: 1 })
  await store.saveNow()
  store.set('ann', { name: 'Ann', age: 41.7, password: 'hunter2' })
  await store.saveNow()
  await store.close()
  const reloaded = open()
  const state = Object.fromEntries(await reloaded.load())
  await reloaded.close()
  let journalText = ''
  try { journalText = readFileSync(`${path}.journal`, 'latin1') } catch {}
  return { state, journalText }
}

test('with codecs.schema() and a journal, a reload gives what it gives without the journal: no property the schema leaves out, integers coerced', async () => {
  const without = await roundTrip(false)
  const withJournal = await roundTrip(true)
  assert.deepEqual(without.state, { seed: { name: 'seed', age: 1 }, ann: { name: 'Ann', age: 41 } })
  assert.deepEqual(withJournal.state, without.state)
  assert.doesNotMatch(withJournal.journalText, /hunter2/, 'the left-out property never reaches the journal')
})

test('with codecs.schema() and a journal, a value the schema cannot encode rejects the save with ERR_STORE_ENCODE and nothing is appended', async () => {
  const path = join(dir, `s${n++}.json`)
  const store = new KeyedStore<string, unknown>({ path, shutdownRegister: fakeRegister().register, codec: codecs.schema(schema), journal: { compactRatio: 1000 }, delayMs: 60_000 })
  await store.load()
  store.set('seed', { name: 'seed' })
  await store.saveNow()
  const before = readFileSync(`${path}.journal`)
  store.set('bad', { age: 3 }) // "name" is required
  await assert.rejects(store.saveNow(), { code: 'ERR_STORE_ENCODE' })
  assert.deepEqual(readFileSync(`${path}.journal`), before)
  store.delete('bad')
  await store.close()
})
