import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test } from 'node:test'
import { JsonSnapshot } from '../workers/json-snapshot.js'

// The keyed writer's first snapshot of a mirror (a fresh store's first fill, or the first save after
// a load) is the whole state: it must cost the writer's thread no more than JSON.stringify of the
// object would, or a first save of a large state takes longer than writing it inline.

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
  for (let i = 0; i < 20; i++) new JsonSnapshot().text(small)
  const firstMs: number[] = []
  const wholeMs: number[] = []
  // Interleaved, best of five each, so a burst of load on the machine hits both alike.
  for (let i = 0; i < 5; i++) {
    const snapshot = new JsonSnapshot()
    let text: string | undefined
    firstMs.push(timed(() => { text = snapshot.text(mirror) }))
    assert.equal(text, whole)
    wholeMs.push(timed(() => JSON.stringify(Object.fromEntries(mirror))))
    // The next snapshots keep each member, then reuse all but the changed ones.
    assert.equal(snapshot.text(mirror), whole)
    mirror.set('e0000001', 'changed')
    snapshot.forget([['e0000001', 'changed']])
    assert.equal(snapshot.text(mirror), JSON.stringify(Object.fromEntries(mirror)))
    mirror.set('e0000001', 1)
  }
  const ratio = Math.min(...firstMs) / Math.min(...wholeMs)
  t.diagnostic(`first snapshot ${firstMs.map(Math.round).join('/')} ms against JSON.stringify ${wholeMs.map(Math.round).join('/')} ms: ${ratio.toFixed(2)}x`)
  assert.ok(ratio < 0.7, `the first snapshot took ${ratio.toFixed(2)}x JSON.stringify of the object`)
})
