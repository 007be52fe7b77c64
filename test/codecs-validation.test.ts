import assert from 'node:assert/strict'
import { readdirSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { test } from 'node:test'
import { codecs, KeyedStore, Store, type StandardSchemaV1 } from '../src/index.js'
import { fakeRegister, recordingLogger, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `v${n++}.json`)
const register = fakeRegister().register

const shopSchema = {
  type: 'object',
  required: ['items'],
  properties: { items: { type: 'array', items: { type: 'object', required: ['price'], properties: { name: { type: 'string' }, price: { type: 'number', minimum: 0 } } } } }
}

interface Settings { readonly theme: 'light' | 'dark', readonly fontSize: number }

/** A Standard Schema validator written by hand: checks the shape and fills in a default, as zod or valibot would. */
const settingsValidator: StandardSchemaV1<unknown, Settings> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) => {
      const object = value as Record<string, unknown> | null
      if (typeof object !== 'object' || object === null) return { issues: [{ message: 'expected an object' }] }
      if (object['theme'] !== 'light' && object['theme'] !== 'dark') return { issues: [{ message: 'expected "light" or "dark"', path: [{ key: 'theme' }] }, { message: 'second', path: ['x'] }] }
      const fontSize = object['fontSize'] ?? 14
      if (typeof fontSize !== 'number') return { issues: [{ message: 'expected a number', path: ['fontSize'] }] }
      return { value: { theme: object['theme'], fontSize } }
    }
  }
}

test('codecs.schema(schema, { validate: true }): a file that violates the schema is ERR_STORE_DECODE naming the first failing $.path and keyword', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ items: [{ name: 'a', price: 1 }, { name: 'b', price: 'free' }] }))
  const store = new Store({ path, shutdownRegister: register, codec: codecs.schema(shopSchema, { validate: true }) })
  await assert.rejects(store.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /fails validation at \$\.items\[1\]\.price: must be number \(keyword "type"\)/)
    return true
  })
  writeFileSync(path, JSON.stringify({ items: [{ name: 'a', price: 1 }] }))
  assert.deepEqual(await store.load(), { items: [{ name: 'a', price: 1 }] })
  await store.close()
})

test('without { validate: true }, codecs.schema() loads a file its schema does not describe, as before', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ items: 'none' }))
  const store = new Store({ path, shutdownRegister: register, codec: codecs.schema(shopSchema) })
  assert.deepEqual(await store.load(), { items: 'none' })
  await store.close()
})

test('codecs.validated() with a Standard Schema validator: load() returns its output, and a violation names the path of the first issue', async () => {
  const path = file()
  const codec = codecs.validated(codecs.gzip(codecs.json<Settings>()), settingsValidator)
  const store = new Store<Settings>({ path, shutdownRegister: register, codec })
  await store.save({ theme: 'dark' } as Settings)
  assert.deepEqual(await store.load(), { theme: 'dark', fontSize: 14 })
  writeFileSync(path, JSON.stringify({ theme: 'blue' }))
  await assert.rejects(store.load(), /fails validation at \$\.theme: expected "light" or "dark" \(and 1 more issue\(s\)\)/)
  await store.close()
})

test('a value that fails validation goes through onCorrupt: \'quarantine\': moved aside, logged, loaded as absent', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ items: [{ price: -1 }] }))
  const logger = recordingLogger()
  const store = new Store({ path, shutdownRegister: register, logger, onCorrupt: 'quarantine', codec: codecs.validated(codecs.json(), shopSchema) })
  assert.equal(await store.load(), undefined)
  assert.equal(readdirSync(dir).filter((name) => name.startsWith(`${basename(path)}.corrupt.`)).length, 1)
  assert.match(String((logger.lines[0]?.fields['err'] as Error).message), /\$\.items\[0\]\.price: must be >= 0 \(keyword "minimum"\)/)
  await store.close()
})

test('a versioned store validates its data, not the envelope around it, after migration', async () => {
  const path = file()
  writeFileSync(path, JSON.stringify({ version: 1, minor_version: 1, key: 'shop', data: { items: [{ price: '3' }] } }))
  const store = new Store<{ items: Array<{ price: number }> }>({
    path,
    name: 'shop',
    shutdownRegister: register,
    version: 2,
    migrate: (_v, _m, old) => ({ items: (old as { items: Array<{ price: string }> }).items.map((item) => ({ price: Number(item.price) })) }),
    codec: codecs.gzip(codecs.schema(shopSchema, { validate: true }))
  })
  // The old file's prices are strings, which the schema refuses: migrate() runs first, then validation.
  assert.deepEqual(await store.load(), { items: [{ price: 3 }] })
  writeFileSync(path, JSON.stringify({ version: 1, minor_version: 1, key: 'shop', data: { items: [{ price: '-3' }] } }))
  await assert.rejects(store.load(), /\$\.items\[0\]\.price: must be >= 0/)
  await store.close()
})

test('codecs.validated() refuses what is neither a JSON Schema nor a Standard Schema validator', () => {
  assert.throws(() => codecs.validated(codecs.json(), () => true), { code: 'ERR_STORE_INVALID_ARGUMENT' })
  assert.throws(() => codecs.validated(codecs.json(), { '~standard': { version: 1 } }), /without a validate function/)
  assert.throws(() => codecs.schema(shopSchema, { validate: 'yes' as unknown as boolean }), { code: 'ERR_STORE_INVALID_ARGUMENT' })
})

test('a KeyedStore validates the entries load() returns: a violation is ERR_STORE_DECODE naming the entry, and quarantine moves both files aside', async () => {
  const path = file()
  const prices = { type: 'object', additionalProperties: { type: 'object', required: ['price'], properties: { price: { type: 'number' } } } }
  writeFileSync(path, JSON.stringify({ tea: { price: 2 }, cake: { price: 'free' } }))
  const strict = new KeyedStore({ path, shutdownRegister: register, codec: codecs.validated(codecs.json<Record<string, unknown>>(), prices) })
  await assert.rejects(strict.load(), { code: 'ERR_STORE_DECODE', message: /\$\.cake\.price.*keyword "type"/ })
  await strict.close()
  const logger = recordingLogger()
  const lenient = new KeyedStore({ path, shutdownRegister: register, logger, onCorrupt: 'quarantine', codec: codecs.validated(codecs.json<Record<string, unknown>>(), prices) })
  assert.equal((await lenient.load()).size, 0)
  assert.ok(readdirSync(dir).some((name) => name.startsWith(`${basename(path)}.corrupt.`)))
  await lenient.close()
})

test('a KeyedStore whose entries pass validation loads them', async () => {
  const path = file()
  const prices = { type: 'object', additionalProperties: { type: 'object', required: ['price'], properties: { price: { type: 'number' } } } }
  writeFileSync(path, JSON.stringify({ tea: { price: 2 } }))
  const store = new KeyedStore({ path, shutdownRegister: register, codec: codecs.validated(codecs.json<Record<string, unknown>>(), prices) })
  assert.deepEqual(Object.fromEntries(await store.load()), { tea: { price: 2 } })
  await store.close()
})
