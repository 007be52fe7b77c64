import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import diagnosticsChannel from 'node:diagnostics_channel'
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { constants as zlibConstants, createBrotliCompress } from 'node:zlib'
import { type Codec, codecs, Store } from '../src/index.js'
import { Point } from './fixtures/point-codec.js'
import { fakeRegister, keepAlive, recordingLogger, tempDir } from './helpers.js'

const dir = tempDir()
let n = 0
const file = (): string => join(dir, `s${n++}.bin`)
const register = fakeRegister().register
const pointCodec = new URL('./fixtures/point-codec.js', import.meta.url)
const recordSchema = { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } }, n: { type: 'number' } } }

const k1 = { id: 'k1', key: randomBytes(32) }
const k2 = { id: 'k2', key: randomBytes(32) }
const k3 = { id: 'k3', key: randomBytes(32) }

async function saveThenLoad<T> (codec: Codec<T>, value: T, name?: string): Promise<{ loaded: T | undefined, bytes: Buffer }> {
  const path = file()
  const writer = new Store<T>({ path, shutdownRegister: register, codec, ...(name === undefined ? {} : { name }) })
  await writer.save(value)
  await writer.close()
  const reader = new Store<T>({ path, shutdownRegister: register, codec, ...(name === undefined ? {} : { name }) })
  const loaded = await reader.load()
  await reader.close()
  return { loaded, bytes: readFileSync(path) }
}

const bases = {
  json: { codec: (): Codec<unknown> => codecs.json(), value: (): unknown => ({ name: 'lamp ü', tags: ['a', 'b'], n: 1.5 }) },
  schema: { codec: (): Codec<unknown> => codecs.schema(recordSchema), value: (): unknown => ({ name: 'lamp ü', tags: ['a', 'b'], n: 1.5 }) },
  module: { codec: (): Codec<unknown> => codecs.module(pointCodec), value: (): unknown => new Point(3, 4) }
} as const
const compressions = {
  none: <T>(c: Codec<T>): Codec<T> => c,
  gzip: <T>(c: Codec<T>): Codec<T> => codecs.gzip(c, { level: 9 }),
  brotli: <T>(c: Codec<T>): Codec<T> => codecs.brotli(c, { quality: 4 })
} as const
const encryptions = {
  plain: <T>(c: Codec<T>): Codec<T> => c,
  encrypted: <T>(c: Codec<T>): Codec<T> => codecs.encrypted(c, { keys: [k1] })
} as const

const SEALED = Buffer.from([0x89, 0x4f, 0x53, 0x45, 0x4e, 0x43])
const BROTLI = Buffer.from([0x89, 0x4f, 0x53, 0x42, 0x52, 0x01])

for (const [baseName, base] of Object.entries(bases)) {
  for (const [compressionName, compress] of Object.entries(compressions)) {
    for (const [encryptionName, encrypt] of Object.entries(encryptions)) {
      test(`Store round trip: ${baseName} x ${compressionName} x ${encryptionName} loads what was saved, and the file says what it is`, async () => {
        const value = base.value()
        const { loaded, bytes } = await saveThenLoad(encrypt(compress(base.codec())), value)
        assert.deepEqual(loaded, value)
        if (baseName === 'module') assert.equal((loaded as Point).length(), 5)
        if (encryptionName === 'encrypted') {
          assert.ok(bytes.subarray(0, 6).equals(SEALED), 'an encrypted file starts with its magic')
          assert.ok(!bytes.includes('lamp') && !bytes.includes('"x"'), 'no plaintext in an encrypted file')
        } else if (compressionName === 'gzip') {
          assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b])
        } else if (compressionName === 'brotli') {
          assert.ok(bytes.subarray(0, 6).equals(BROTLI))
        }
      })
    }
  }
}

test('a JSON store loads its older files after compression is switched on, over to brotli, and off again', async () => {
  const path = file()
  const steps: Array<Codec<unknown>> = [codecs.json(), codecs.gzip(codecs.json()), codecs.brotli(codecs.json()), codecs.json()]
  let previous: unknown
  for (const [i, codec] of steps.entries()) {
    const store = new Store<unknown>({ path, shutdownRegister: register, codec })
    assert.deepEqual(await store.load(), previous, `step ${i} loads what step ${i - 1} wrote`)
    previous = { step: i, text: 'x'.repeat(500) }
    await store.save(previous)
    await store.close()
  }
})

test('a large JSON state compresses: gzip and brotli files are much smaller than the JSON text', async () => {
  const value = { records: Array.from({ length: 3000 }, (_, i) => ({ id: `rec-${i}`, area: ['kitchen', 'hall', 'garden'][i % 3], on: i % 2 === 0 })) }
  const text = JSON.stringify(value).length
  for (const codec of [codecs.gzip(codecs.json()), codecs.brotli(codecs.json()), codecs.encrypted(codecs.gzip(codecs.json()), { keys: [k1] })]) {
    const { loaded, bytes } = await saveThenLoad(codec, value)
    assert.deepEqual(loaded, value)
    assert.ok(bytes.byteLength * 4 < text, `${codec.spec.kind}: ${bytes.byteLength} bytes for ${text} of JSON`)
  }
})

test('every flipped byte and every truncation of an encrypted file is ERR_STORE_DECODE, never data', async () => {
  const path = file()
  const codec = codecs.encrypted(codecs.json(), { keys: [k1] })
  const writer = new Store({ path, shutdownRegister: register, codec })
  await writer.save({ a: 1 })
  await writer.close()
  const good = readFileSync(path)
  const store = new Store({ path, shutdownRegister: register, codec })
  let failures = 0
  const expectDecodeError = async (what: string): Promise<void> => {
    await assert.rejects(store.load(), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE', what)
      return true
    })
    failures++
  }
  for (let at = 0; at < good.byteLength; at++) {
    const bad = Buffer.from(good)
    bad[at] = (bad[at] ?? 0) ^ 0x01
    writeFileSync(path, bad)
    await expectDecodeError(`byte ${at} flipped`)
  }
  for (let length = 0; length < good.byteLength; length++) {
    writeFileSync(path, good.subarray(0, length))
    await expectDecodeError(`cut to ${length} bytes`)
  }
  assert.equal(failures, good.byteLength * 2)
  writeFileSync(path, good)
  assert.deepEqual(await store.load(), { a: 1 })
  await store.close()
})

test('key rotation across three keys: each store decrypts with any listed key, and its next save re-encrypts with the first', async () => {
  const path = file()
  const keyIdOf = (): string => { const bytes = readFileSync(path); return bytes.subarray(8, 8 + (bytes[7] ?? 0)).toString() }
  const open = (keys: ReadonlyArray<typeof k1>): Store<unknown> => new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys }) })

  const first = open([k1])
  await first.save({ v: 1 })
  await first.close()
  assert.equal(keyIdOf(), 'k1')

  const second = open([k2, k1])
  assert.deepEqual(await second.load(), { v: 1 })
  await second.save({ v: 1 }) // the same value: still rewritten, under k2
  await second.close()
  assert.equal(keyIdOf(), 'k2')

  const third = open([k3, k2])
  assert.deepEqual(await third.load(), { v: 1 })
  await third.save({ v: 2 })
  await third.close()
  assert.equal(keyIdOf(), 'k3')

  const onlyNewest = open([k3])
  assert.deepEqual(await onlyNewest.load(), { v: 2 })
  await onlyNewest.close()
})

test('a file whose key is no longer listed is ERR_STORE_DECODE naming the key id, not the key', async () => {
  const path = file()
  const writer = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [k1] }) })
  await writer.save({ v: 1 })
  await writer.close()
  const reader = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [k2, k3] }) })
  await assert.rejects(reader.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /key id "k1", which is not among this codec's keys \("k2", "k3"\)/)
    return true
  })
  await reader.close()
})

test('a wrong key under the right id is ERR_STORE_DECODE (authentication failed)', async () => {
  const path = file()
  const writer = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [k1] }) })
  await writer.save({ v: 1 })
  await writer.close()
  const impostor = { id: 'k1', key: randomBytes(32) }
  const reader = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [impostor] }) })
  await assert.rejects(reader.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /authentication failed/)
    return true
  })
  await reader.close()
})

test('a file from another store, encrypted with the same key, is rejected by the associated data', async () => {
  const codec = codecs.encrypted(codecs.json(), { keys: [k1] })
  const a = new Store({ path: file(), name: 'users', shutdownRegister: register, codec })
  await a.save({ admin: false })
  await a.close()
  const b = new Store({ path: file(), name: 'settings', shutdownRegister: register, codec })
  copyFileSync(a.path, b.path)
  await assert.rejects(b.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /another store than "settings"/)
    return true
  })
  await b.close()
  // The same bytes under the same name load: it was the name that refused them.
  const again = new Store({ path: b.path, name: 'users', shutdownRegister: register, codec })
  assert.deepEqual(await again.load(), { admin: false })
  await again.close()
})

test('an encrypted store refuses a plain file (ERR_STORE_DECODE), and onCorrupt: \'quarantine\' moves it aside', async () => {
  const path = file()
  writeFileSync(path, '{"admin":true}')
  const codec = codecs.encrypted(codecs.json(), { keys: [k1] })
  const strict = new Store({ path, shutdownRegister: register, codec })
  await assert.rejects(strict.load(), /not encrypted \(plain\).*unauthenticated data is refused/)
  await strict.close()
  const logger = recordingLogger()
  const lenient = new Store({ path, shutdownRegister: register, codec, onCorrupt: 'quarantine', logger })
  assert.equal(await lenient.load(), undefined)
  await lenient.close()
  assert.equal(readdirSync(dir).filter((name) => name.startsWith(`${path.slice(dir.length + 1)}.corrupt.`)).length, 1)
})

test('a plain store given an encrypted file says to read it with codecs.encrypted()', async () => {
  const path = file()
  const writer = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [k1] }) })
  await writer.save({ v: 1 })
  await writer.close()
  const reader = new Store({ path, shutdownRegister: register, codec: codecs.gzip(codecs.json()) })
  await assert.rejects(reader.load(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'ERR_STORE_DECODE')
    assert.match((err as Error).message, /is encrypted \(AES-256-GCM\).*codecs\.encrypted/)
    return true
  })
  await reader.close()
})

test('an unchanged value under encryption is skipped, not re-encrypted; a changed one gets a fresh nonce', async () => {
  const path = file()
  const store = new Store({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.gzip(codecs.json()), { keys: [k1] }) })
  await store.save({ v: 1 })
  const first = readFileSync(path)
  await store.save({ v: 1 })
  assert.equal(store.stats().unchanged, 1)
  assert.ok(readFileSync(path).equals(first))
  await store.save({ v: 2 })
  await store.save({ v: 1 })
  const nonceAt = 8 + 2
  assert.ok(!readFileSync(path).subarray(nonceAt, nonceAt + 12).equals(first.subarray(nonceAt, nonceAt + 12)), 'the same value written again has a new nonce')
  await store.close()
})

test('key material never appears in errors, logs, stats, diagnostics events or an inspected codec or store', async () => {
  const keys = [k1, k2]
  const forms = keys.flatMap(({ key }) => [key.toString('hex'), key.toString('base64'), key.toString('base64url'), [...key.subarray(0, 8)].join(', '), key.subarray(0, 8).toString('hex').replace(/(..)(?!$)/g, '$1 ')])
  const captured: string[] = []
  const capture = (value: unknown): void => {
    captured.push(inspect(value, { depth: Infinity, showHidden: true, getters: true }))
    try { captured.push(JSON.stringify(value)) } catch {}
  }
  const events = ['offload-store:write:start', 'offload-store:write:end', 'offload-store:write:error']
  const onEvent = (message: unknown): void => { capture(message) }
  for (const name of events) diagnosticsChannel.subscribe(name, onEvent)
  try {
    const logger = recordingLogger()
    const codec = codecs.encrypted(codecs.json<unknown>(), { keys })
    capture(codec)
    const path = file()
    const store = new Store<unknown>({ path, shutdownRegister: register, codec, logger, retry: false })
    capture(store)
    await store.save({ ok: true })
    await store.save({ big: 1n }).catch(capture) // refused on the main thread
    const release = keepAlive() // the delayed write's timer does not hold the loop open
    store.delaySave(() => { throw new Error('boom') }, 0)
    await logger.next('error')
    release()
    capture(store.stats())
    await store.close()
    const wrong = new Store<unknown>({ path, shutdownRegister: register, codec: codecs.encrypted(codecs.json(), { keys: [{ id: 'k1', key: randomBytes(32) }] }), logger, onCorrupt: 'quarantine' })
    await wrong.load()
    await wrong.close()
    const strict = new Store<unknown>({ path: file(), shutdownRegister: register, codec })
    writeFileSync(strict.path, 'garbage')
    await strict.load().catch(capture)
    await strict.close()
    try { codecs.encrypted(codecs.json(), { keys: [{ id: 'short', key: k1.key.subarray(0, 31) }] }) } catch (err) { capture(err) }
    for (const line of logger.lines) capture(line)
    assert.ok(logger.lines.length >= 2, 'the failures were logged')
  } finally {
    for (const name of events) diagnosticsChannel.unsubscribe(name, onEvent)
  }
  const all = captured.join('\n')
  assert.ok(all.includes('ERR_STORE_DECODE') && all.includes('k1'), 'the capture holds the errors and the key ids')
  for (const form of forms) assert.ok(!all.includes(form), 'a form of a key appeared in captured output')
})

test('codecs.gzip(), codecs.brotli() and codecs.encrypted() refuse bad options with ERR_STORE_INVALID_ARGUMENT', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => codecs.gzip(codecs.json(), { level: 10 }), /level must be an integer from 0 to 9, got 10/],
    [() => codecs.brotli(codecs.json(), { quality: -1 }), /quality must be an integer from 0 to 11/],
    [() => codecs.gzip(codecs.brotli(codecs.json())), /already compressed/],
    [() => codecs.gzip(codecs.encrypted(codecs.json(), { keys: [k1] })), /compress inside the encryption/],
    [() => codecs.encrypted(codecs.encrypted(codecs.json(), { keys: [k1] }), { keys: [k1] }), /already encrypted/],
    [() => codecs.encrypted(codecs.json(), { keys: [] }), /non-empty array/],
    [() => codecs.encrypted(codecs.json(), { keys: [{ id: 'a', key: randomBytes(16) }] }), /32 bytes for AES-256, got 16 bytes/],
    [() => codecs.encrypted(codecs.json(), { keys: [k1, { ...k2, id: 'k1' }] }), /"k1" is listed twice/],
    [() => codecs.encrypted(codecs.json(), { keys: [{ id: '', key: k1.key }] }), /id must be a string of 1 to 255/]
  ]
  for (const [call, message] of cases) {
    assert.throws(call, (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'ERR_STORE_INVALID_ARGUMENT')
      assert.match((err as Error).message, message)
      return true
    })
  }
})

test('a compressed file that would inflate past 1 GiB (a planted "bomb") is refused with ERR_STORE_DECODE instead of exhausting memory', { timeout: 60_000 }, async () => {
  const path = file()
  // 1.1 GiB of zeros in about 200 KB: streamed, so the test never holds the inflated bytes itself.
  const compressor = createBrotliCompress({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 1 } })
  const chunks: Buffer[] = []
  compressor.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  const ended = new Promise((resolve) => { compressor.on('end', resolve) })
  const zeros = Buffer.alloc(1 << 20)
  for (let i = 0; i < 1100; i++) {
    if (!compressor.write(zeros)) await new Promise((resolve) => { compressor.once('drain', resolve) })
  }
  compressor.end()
  await ended
  writeFileSync(path, Buffer.concat([Buffer.from([0x89, 0x4f, 0x53, 0x42, 0x52, 0x01]), ...chunks]))
  const store = new Store({ path, shutdownRegister: register, codec: codecs.brotli(codecs.json()) })
  await assert.rejects(store.load(), { code: 'ERR_STORE_DECODE', message: /more than 1 GiB/ })
  await store.close()
})
