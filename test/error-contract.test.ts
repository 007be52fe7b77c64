import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { codecs, errorCodes, KeyedStore, ShutdownRegistry, Store, StoreError, WriterPool } from '../src/index.js'
import { fakeRegister, tempDir } from './helpers.js'

// The error contract: every public entry point, given bad arguments or called in the wrong state,
// throws or rejects with a StoreError whose code is one of errorCodes, never a TypeError or a raw
// fs error; and an error that belongs to a store names it.

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `contract${n++}.json`)
const register = fakeRegister().register

function isContractError (err: unknown, expected: keyof typeof errorCodes, storeName?: string): true {
  assert.ok(err instanceof StoreError, `a StoreError, got ${String(err)}`)
  assert.ok(Object.hasOwn(errorCodes, err.code), `a documented code, got ${err.code}`)
  assert.equal(err.code, expected, err.message)
  if (storeName !== undefined) {
    assert.equal(err.store, storeName, `names the store: ${err.message}`)
    assert.match(err.message, new RegExp(`store "${storeName}"`))
  }
  return true
}

const badStoreOptions: ReadonlyArray<readonly [string, unknown]> = [
  ['options missing', undefined],
  ['options null', null],
  ['path empty', { path: '', shutdownRegister: register }],
  ['shutdownRegister missing', { path: '/tmp/x.json' }],
  ['an option of KeyedStore', { path: '/tmp/x.json', shutdownRegister: register, delayMs: 10 }],
  ['a misspelt option', { path: '/tmp/x.json', shutdownRegister: register, durabilty: 'full' }],
  ['codec not from codecs', { path: '/tmp/x.json', shutdownRegister: register, codec: 'json' }],
  ['mode not a mode', { path: '/tmp/x.json', shutdownRegister: register, mode: 0o10000 }],
  ['logger without methods', { path: '/tmp/x.json', shutdownRegister: register, logger: {} }],
  ['durability unknown', { path: '/tmp/x.json', shutdownRegister: register, durability: 'some' }],
  ['maxDelay negative', { path: '/tmp/x.json', shutdownRegister: register, maxDelay: -1 }],
  ['retry not an object', { path: '/tmp/x.json', shutdownRegister: register, retry: 5 }],
  ['onCorrupt unknown', { path: '/tmp/x.json', shutdownRegister: register, onCorrupt: 'ignore' }],
  ['pool not a WriterPool', { path: '/tmp/x.json', shutdownRegister: register, pool: {} }],
  ['handoffWarnMs negative', { path: '/tmp/x.json', shutdownRegister: register, handoffWarnMs: -1 }],
  ['skipUnchanged not a boolean', { path: '/tmp/x.json', shutdownRegister: register, skipUnchanged: 'yes' }],
  ['version 0', { path: '/tmp/x.json', shutdownRegister: register, version: 0 }],
  ['migrate not a function', { path: '/tmp/x.json', shutdownRegister: register, version: 1, migrate: 'x' }]
]

for (const [what, options] of badStoreOptions) {
  test(`new Store() with ${what} throws ERR_STORE_INVALID_OPTION`, () => {
    const named = options !== null && typeof options === 'object' && (options as { path?: string }).path === '/tmp/x.json'
    assert.throws(() => new Store(options as never), (err) => isContractError(err, 'ERR_STORE_INVALID_OPTION', named ? '/tmp/x.json' : undefined))
  })
}

const badKeyedOptions: ReadonlyArray<readonly [string, unknown]> = [
  ['options missing', undefined],
  ['an option of Store', { path: '/tmp/k.json', shutdownRegister: register, handoffWarnMs: 5 }],
  ['delayMs negative', { path: '/tmp/k.json', shutdownRegister: register, delayMs: -1 }],
  ['journal not a boolean or object', { path: '/tmp/k.json', shutdownRegister: register, journal: 5 }],
  ['writeTimeout negative', { path: '/tmp/k.json', shutdownRegister: register, writeTimeout: -1 }],
  ['codecs.raw()', { path: '/tmp/k.json', shutdownRegister: register, codec: codecs.raw() }]
]

for (const [what, options] of badKeyedOptions) {
  test(`new KeyedStore() with ${what} throws ERR_STORE_INVALID_OPTION`, () => {
    const named = options !== undefined
    assert.throws(() => new KeyedStore(options as never), (err) => isContractError(err, 'ERR_STORE_INVALID_OPTION', named ? '/tmp/k.json' : undefined))
  })
}

test('Store methods with bad arguments throw ERR_STORE_INVALID_ARGUMENT naming the store', async () => {
  const store = new Store({ path: file(), name: 'settings', shutdownRegister: register })
  assert.throws(() => { store.delaySave('x' as never, 1) }, (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT', 'settings'))
  assert.throws(() => { store.delaySave(() => 1, Number.NaN) }, (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT', 'settings'))
  await store.close()
})

test('Store values that cannot be written reject with a coded error naming the store', async () => {
  const store = new Store({ path: file(), name: 'values', shutdownRegister: register })
  await assert.rejects(store.save({ n: 1n } as never), (err) => isContractError(err, 'ERR_STORE_ENCODE', 'values'))
  await assert.rejects(store.save({ m: new Map() } as never), (err) => isContractError(err, 'ERR_STORE_ENCODE', 'values'))
  await assert.rejects(store.save({ f: () => {} } as never), (err) => isContractError(err, 'ERR_STORE_DATA_CLONE', 'values'))
  await store.close()
})

test('every Store method after close() rejects or throws ERR_STORE_CLOSED', async () => {
  const store = new Store({ path: file(), name: 'closed', shutdownRegister: register })
  await store.close()
  await assert.rejects(store.load(), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'closed'))
  await assert.rejects(store.save({}), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'closed'))
  await assert.rejects(store.saveNow(), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'closed'))
  await assert.rejects(store.remove(), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'closed'))
  assert.throws(() => { store.delaySave(() => ({}), 1) }, (err) => isContractError(err, 'ERR_STORE_CLOSED', 'closed'))
})

test('KeyedStore methods with bad arguments or in the wrong state throw coded errors naming the store', async () => {
  const store = new KeyedStore<string, unknown>({ path: file(), name: 'table', shutdownRegister: register })
  assert.throws(() => store.set('a', 1), (err) => isContractError(err, 'ERR_STORE_STATE', 'table'))
  assert.throws(() => store.delete('a'), (err) => isContractError(err, 'ERR_STORE_STATE', 'table'))
  assert.throws(() => { store.clear() }, (err) => isContractError(err, 'ERR_STORE_STATE', 'table'))
  await store.load()
  assert.throws(() => store.set(42 as never, 1), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT', 'table'))
  assert.throws(() => store.set('a', undefined), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT', 'table'))
  store.set('a', 1)
  await assert.rejects(store.load(), (err) => isContractError(err, 'ERR_STORE_STATE', 'table'))
  await store.close()
  assert.throws(() => store.set('b', 1), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'table'))
  await assert.rejects(store.saveNow(), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'table'))
  await assert.rejects(store.load(), (err) => isContractError(err, 'ERR_STORE_CLOSED', 'table'))
})

test('two open stores on one path: the second throws ERR_STORE_PATH_IN_USE naming it', async () => {
  const path = file()
  const first = new Store({ path, shutdownRegister: register })
  assert.throws(() => new Store({ path, name: 'second', shutdownRegister: register }), (err) => isContractError(err, 'ERR_STORE_PATH_IN_USE', 'second'))
  await first.close()
})

test('ShutdownRegistry methods with bad arguments throw or reject ERR_STORE_INVALID_ARGUMENT', async () => {
  const registry = new ShutdownRegistry()
  assert.throws(() => { registry.register('x' as never) }, (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
  await assert.rejects(registry.flush({ timeoutMs: -1 }), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
  assert.throws(() => registry.installSignalHandlers({ timeoutMs: 1.5 }), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
  assert.throws(() => registry.installSignalHandlers({ signals: 'SIGTERM' as never }), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
  assert.throws(() => registry.installSignalHandlers({ signals: ['SIGNOPE' as NodeJS.Signals] }), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
  assert.throws(() => registry.installSignalHandlers({ exit: 1 as never }), (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'))
})

test('a failed shutdown flush rejects ERR_STORE_FLUSH naming the stores that failed', async () => {
  const registry = new ShutdownRegistry()
  registry.register(async () => { throw new Error('disk on fire') }, { name: 'broken' })
  await assert.rejects(registry.flush(), (err) => {
    isContractError(err, 'ERR_STORE_FLUSH')
    assert.match((err as Error).message, /broken/)
    return true
  })
})

test('new WriterPool() with bad options throws ERR_STORE_INVALID_OPTION', () => {
  for (const options of [null, { maxThreads: 0 }, { idleTimeout: -1 }, { writeTimeout: 1.5 }, { closeTimeout: 'x' }, { resourceLimits: 5 }]) {
    assert.throws(() => new WriterPool(options as never), (err) => isContractError(err, 'ERR_STORE_INVALID_OPTION'), JSON.stringify(options))
  }
})

test('codecs with bad arguments throw ERR_STORE_INVALID_ARGUMENT', () => {
  const bad: Array<() => unknown> = [
    () => codecs.json({ lossy: 'yes' as never }),
    () => codecs.schema(null as never),
    () => codecs.schema({}, { lossy: 1 as never }),
    () => codecs.module('relative/codec.js'),
    () => codecs.module(join(dir, 'no-such-codec.js')),
    () => codecs.module(new URL('./fixtures/point-codec.js', import.meta.url), null as never)
  ]
  for (const call of bad) assert.throws(call, (err) => isContractError(err, 'ERR_STORE_INVALID_ARGUMENT'), call.toString())
})

test('a load of a file that cannot be read or decoded rejects with a coded error, never a raw fs error', async () => {
  const store = new Store({ path: dir, name: 'a-directory', shutdownRegister: register })
  await assert.rejects(store.load(), (err) => isContractError(err, 'ERR_STORE_READ', 'a-directory'))
  await store.close()
})
