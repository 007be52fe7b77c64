import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tempDir } from './helpers.js'
import { fixture, lastJson, run } from './rel-helpers.js'

// No main-thread step of a save may grow faster than the value. Each shape is timed at n and at 4n
// in one child process (killed if it hangs): where JSON.stringify can encode the value, the save's
// cost is taken as a ratio to it, which must not grow with n (a linear extra step keeps the ratio,
// a quadratic one multiplies it by about 4); where it cannot (cycles), the save's own time must
// grow about 4x, not 16x. The bounds are generous: the machine is shared.

const dir = tempDir('offload-store-cost-')
const KILL_MS = 60_000

interface Cost { readonly save: [number, number], readonly stringify: [number | null, number | null] }

async function measure (shape: string, n: number): Promise<Cost> {
  const result = await run(process.execPath, [fixture('cost-child.js'), dir, shape, String(n)], { killAfterMs: KILL_MS })
  assert.equal(result.signal, null, `saving ${shape} at ${n} and ${4 * n} did not finish within ${KILL_MS} ms`)
  assert.equal(result.code, 0, result.stderr)
  return lastJson<Cost>(result)
}

const f = (ms: number): string => ms.toFixed(2)

for (const [shape, n, what] of [
  ['deepChain', 800, 'a chain near the stack limit (800 and 3,200 levels)'],
  ['sharedRefs', 50_000, '50,000 and 200,000 references to one shared object'],
  ['wide', 100_000, 'one object of 100,000 and 400,000 keys']
] as const) {
  test(`saving ${what} costs the main thread a ratio to JSON.stringify that does not grow with the value`, { timeout: KILL_MS + 10_000 }, async (t) => {
    const { save, stringify } = await measure(shape, n)
    const [small, large] = stringify
    assert.ok(small !== null && large !== null, 'JSON.stringify encodes this shape')
    const ratios = [save[0] / small, save[1] / large] as const
    t.diagnostic(`save ${f(save[0])} / ${f(save[1])} ms, JSON.stringify ${f(small)} / ${f(large)} ms, ratio ${f(ratios[0])} -> ${f(ratios[1])}`)
    assert.ok(ratios[1] < ratios[0] * 2.5, `the ratio to JSON.stringify grew from ${f(ratios[0])} to ${f(ratios[1])} between n and 4n: a step grows faster than the value`)
    // Only where JSON.stringify is long enough for the fixed costs of a save not to dominate.
    if (large >= 10) assert.ok(ratios[1] < 6, `a save costs ${f(ratios[1])}x JSON.stringify of the same value`)
  })
}

for (const [shape, n, what] of [
  ['longCycle', 25_000, 'a ring of 25,000 and 100,000 nodes'],
  ['doublyLinked', 25_000, 'a doubly linked list of 25,000 and 100,000 nodes']
] as const) {
  test(`refusing ${what} takes time linear in its size`, { timeout: KILL_MS + 10_000 }, async (t) => {
    const { save } = await measure(shape, n)
    const growth = save[1] / save[0]
    t.diagnostic(`save ${f(save[0])} / ${f(save[1])} ms: x${f(growth)} for 4x the nodes`)
    assert.ok(growth < 10, `4x the nodes took ${f(growth)}x the time (linear ~4, quadratic ~16)`)
  })
}
