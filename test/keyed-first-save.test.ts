import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { JsonSnapshot } from '../workers/json-snapshot.js'

// The keyed writer's first snapshot of a mirror (a fresh store's first fill, or the first save after
// a load) is the whole state: it must cost the writer's thread no more than JSON.stringify of the
// object would, or a first save of a large state takes longer than writing it inline.

function textOf (bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString()
}

function timed (work: () => unknown): number {
  const start = performance.now()
  work()
  return performance.now() - start
}

test('the first snapshot of a 200,000-entry mirror costs well under JSON.stringify of the object, and the ones after it build the same text', (t) => {
  const model = new Map<string, unknown>()
  for (let i = 0; i < 200_000; i++) model.set(`e${String(i).padStart(7, '0')}`, i % 3 === 0 ? { i, on: true } : i)
  const whole = JSON.stringify(Object.fromEntries(model))
  // Warmed up first: the loop is JavaScript, JSON.stringify is not, and a cold loop measures the JIT.
  const small = [...model].slice(0, 2000)
  for (let i = 0; i < 20; i++) new JsonSnapshot().bytes(new Map(small))
  const firstMs: number[] = []
  const wholeMs: number[] = []
  // Interleaved, best of five each, so a burst of load on the machine hits both alike.
  for (let i = 0; i < 5; i++) {
    // A mirror of its own: a snapshot that keeps a value's JSON lets go of the value in the mirror.
    const mirror = new Map(model)
    const snapshot = new JsonSnapshot()
    let text: string | undefined
    firstMs.push(timed(() => { text = textOf(snapshot.bytes(mirror)) }))
    assert.equal(text, whole)
    wholeMs.push(timed(() => JSON.stringify(Object.fromEntries(model))))
    // The next snapshots keep each member, then reuse all but the changed ones.
    assert.equal(textOf(snapshot.bytes(mirror)), whole)
    mirror.set('e0000001', 'changed')
    snapshot.forget([['e0000001', 'changed']])
    assert.equal(textOf(snapshot.bytes(mirror)), JSON.stringify(Object.fromEntries(new Map(model).set('e0000001', 'changed'))))
  }
  const ratio = Math.min(...firstMs) / Math.min(...wholeMs)
  t.diagnostic(`first snapshot ${firstMs.map(Math.round).join('/')} ms against JSON.stringify ${wholeMs.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 0.7, `the first snapshot took ${ratio.toFixed(2)}x JSON.stringify of the object`)
})

// The mirror, and the same entries kept apart to say what its JSON must be.
function twoMaps (): { mirror: Map<string, unknown>, model: Map<string, unknown>, set: (key: string, value: unknown) => void, del: (key: string) => void } {
  const mirror = new Map<string, unknown>()
  const model = new Map<string, unknown>()
  return {
    mirror,
    model,
    set: (key, value) => { mirror.set(key, value); model.set(key, value) },
    del: (key) => { mirror.delete(key); model.delete(key) }
  }
}

test('a snapshot is byte for byte the UTF-8 of JSON.stringify of the object, with multi-byte text, values JSON leaves out, and a buffer that grows', () => {
  const { mirror, model, set, del } = twoMaps()
  for (let i = 0; i < 5000; i++) {
    set(`k${i}`, i % 4 === 0 ? { name: `Zoë ${i} 🌍`, note: 'é'.repeat(i % 50) } : i % 4 === 1 ? undefined : i % 4 === 2 ? `"quoted"\n${i}` : [i, null, true])
  }
  set('ключ', '值')
  const snapshot = new JsonSnapshot()
  const expected = (): string => JSON.stringify(Object.fromEntries(model))
  // First (uncached), then cached, then after a change that makes the text longer than the buffer was.
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  set('k0', '😀'.repeat(200_000))
  snapshot.forget([['k0', '']])
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  del('k4')
  snapshot.forget([['k4']])
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  assert.equal(textOf(new JsonSnapshot().bytes(new Map())), '{}')
})

test('once a value\'s JSON is kept, the mirror no longer holds the value, and later snapshots are still exact', () => {
  const { mirror, model, set } = twoMaps()
  const values = Array.from({ length: 100 }, (_, i) => ({ i, tags: [`t${i}`] }))
  values.forEach((value, i) => { set(`k${i}`, value) })
  const snapshot = new JsonSnapshot()
  snapshot.bytes(mirror)
  // The first snapshot keeps no JSON (a store saved once never pays for it), so nothing is let go of.
  assert.equal(mirror.get('k7'), values[7])
  snapshot.bytes(mirror)
  assert.ok(values.every((value, i) => !Object.is(mirror.get(`k${i}`), value)), 'the mirror still holds values whose JSON is kept')
  set('k7', { i: 7, changed: true })
  snapshot.forget([['k7', 0]])
  assert.equal(textOf(snapshot.bytes(mirror)), JSON.stringify(Object.fromEntries(model)))
  assert.ok(!Object.is(mirror.get('k7'), model.get('k7')))
})

test('an array-index key that comes after the values were let go of is written first, in numeric order, with the kept JSON of the rest', () => {
  const { mirror, model, set } = twoMaps()
  for (const key of ['b', '10', 'a']) set(key, { key })
  const snapshot = new JsonSnapshot()
  snapshot.bytes(mirror)
  snapshot.bytes(mirror)
  set('2', { key: '2' })
  set('c', [1])
  snapshot.forget([['2', 0], ['c', 0]])
  const text = textOf(snapshot.bytes(mirror))
  assert.equal(text, JSON.stringify(Object.fromEntries(model)))
  assert.ok(text?.startsWith('{"2":{"key":"2"},"10":'), text)
  assert.equal(textOf(snapshot.bytes(mirror)), text)
})
