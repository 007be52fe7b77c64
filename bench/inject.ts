import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// Regressions for the gate's self-test, injected into a COPY of the built tree (never the source):
// each copy is a self-contained package root (package.json, dist/, bench/gate.config.json and a
// node_modules link), so `node <copy>/dist/bench/index.js` measures the patched store through the
// package's own name, exactly as the unchanged tree is measured.

/** The regressions the self-test injects; `none` is the unchanged tree, copied the same way. */
export type Injection = 'none' | 'main-encode' | 'busy-5ms' | 'busy-1ms' | 'busy-0.5ms' | 'busy-0.25ms' | 'no-worker'

/** What each injection does, for the report. */
export const INJECTION_DESCRIPTIONS: Readonly<Record<Injection, string>> = {
  none: 'unchanged tree',
  'main-encode': 'the codec also encodes the value on the main thread before the hand-off',
  'busy-5ms': 'a 5 ms busy-wait in every save',
  'busy-1ms': 'a 1 ms busy-wait in every save',
  'busy-0.5ms': 'a 0.5 ms busy-wait in every save',
  'busy-0.25ms': 'a 0.25 ms busy-wait in every save',
  'no-worker': 'encode and atomic write inline on the main thread (no worker)'
}

// The statement that hands a write to the worker pool, in the compiled store.js (`Store.#write`,
// where `value` is the user's value and `task` what the worker receives).
const DISPATCH = 'this.#pool[kDispatch](task, handoff.transfer)'
const ANCHOR = `const { result, mainMs } = await this.#core.write(checkMs, () => ${DISPATCH});`

function patchStore (source: string, injection: Injection): string {
  if (injection === 'none') return source
  if (!source.includes(ANCHOR)) throw new Error(`cannot inject ${injection}: the compiled store.js no longer contains ${JSON.stringify(ANCHOR)}; update bench/inject.ts to the new hand-off`)
  const busy = /^busy-([\d.]+)ms$/.exec(injection)
  if (busy !== null) {
    const helper = 'const __gateBusy = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };\n'
    return helper + source.replace(ANCHOR, `__gateBusy(${Number(busy[1])}); ${ANCHOR}`)
  }
  switch (injection) {
    case 'main-encode':
      return "import { encode as __gateEncode } from '../workers/encoders.js';\n" + source.replace(ANCHOR, `await __gateEncode(this.#spec, value); ${ANCHOR}`)
    case 'no-worker':
      return "import { encodeAndWrite as __gateWrite } from '../workers/writer.js';\n" + source.replace(ANCHOR, ANCHOR.replace(DISPATCH, '({ result: __gateWrite(task).then((written) => written.result), postMs: 0 })'))
    default:
      throw new Error(`unknown injection ${JSON.stringify(injection)}: this should not happen`)
  }
}

/**
 * Copies the built package at `root` (its package.json, dist/ and bench/gate.config.json) to
 * `target`, links its node_modules, and applies `injection` to the copy's dist/src/store.js.
 * Returns `target`.
 */
export function injectedCopy (root: string, target: string, injection: Injection): string {
  const dist = join(root, 'dist')
  if (!existsSync(join(dist, 'src', 'store.js'))) throw new Error(`no build in ${dist}: run npm run build first`)
  mkdirSync(join(target, 'bench'), { recursive: true })
  cpSync(dist, join(target, 'dist'), { recursive: true })
  cpSync(join(root, 'package.json'), join(target, 'package.json'))
  cpSync(join(root, 'bench', 'gate.config.json'), join(target, 'bench', 'gate.config.json'))
  symlinkSync(join(root, 'node_modules'), join(target, 'node_modules'), 'dir')
  const store = join(target, 'dist', 'src', 'store.js')
  writeFileSync(store, patchStore(readFileSync(store, 'utf8'), injection))
  return target
}
