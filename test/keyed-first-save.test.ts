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
  const mirror = new Map<string, unknown>()
  for (let i = 0; i < 200_000; i++) mirror.set(`e${String(i).padStart(7, '0')}`, i % 3 === 0 ? { i, on: true } : i)
  const whole = JSON.stringify(Object.fromEntries(mirror))
  // Warmed up first: the loop is JavaScript, JSON.stringify is not, and a cold loop measures the JIT.
  const small = new Map([...mirror].slice(0, 2000))
  for (let i = 0; i < 20; i++) new JsonSnapshot().bytes(small)
  const firstMs: number[] = []
  const wholeMs: number[] = []
  // Interleaved, best of five each, so a burst of load on the machine hits both alike.
  for (let i = 0; i < 5; i++) {
    const snapshot = new JsonSnapshot()
    let text: string | undefined
    firstMs.push(timed(() => { text = textOf(snapshot.bytes(mirror)) }))
    assert.equal(text, whole)
    wholeMs.push(timed(() => JSON.stringify(Object.fromEntries(mirror))))
    // The next snapshots keep each member, then reuse all but the changed ones.
    assert.equal(textOf(snapshot.bytes(mirror)), whole)
    mirror.set('e0000001', 'changed')
    snapshot.forget([['e0000001', 'changed']])
    assert.equal(textOf(snapshot.bytes(mirror)), JSON.stringify(Object.fromEntries(mirror)))
    mirror.set('e0000001', 1)
  }
  const ratio = Math.min(...firstMs) / Math.min(...wholeMs)
  t.diagnostic(`first snapshot ${firstMs.map(Math.round).join('/')} ms against JSON.stringify ${wholeMs.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 0.7, `the first snapshot took ${ratio.toFixed(2)}x JSON.stringify of the object`)
})

test('a snapshot is byte for byte the UTF-8 of JSON.stringify of the object, with multi-byte text, values JSON leaves out, and a buffer that grows', () => {
  const mirror = new Map<string, unknown>()
  for (let i = 0; i < 5000; i++) {
    mirror.set(`k${i}`, i % 4 === 0 ? { name: `Zoë ${i} 🌍`, note: 'é'.repeat(i % 50) } : i % 4 === 1 ? undefined : i % 4 === 2 ? `"quoted"\n${i}` : [i, null, true])
  }
  mirror.set('ключ', '值')
  const snapshot = new JsonSnapshot()
  const expected = (): string => JSON.stringify(Object.fromEntries(mirror))
  // First (uncached), then cached, then after a change that makes the text longer than the buffer was.
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  mirror.set('k0', '😀'.repeat(200_000))
  snapshot.forget([['k0', '']])
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  mirror.delete('k4')
  snapshot.forget([['k4']])
  assert.equal(textOf(snapshot.bytes(mirror)), expected())
  assert.equal(textOf(new JsonSnapshot().bytes(new Map())), '{}')
})
