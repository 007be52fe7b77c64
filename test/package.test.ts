import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.js'

// What ships is what users get: pack the built package, install the tarball into a fresh project,
// and use it from there by its name. Slow (an npm install), so it stays one test.
const root = fileURLToPath(new URL('../../', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

// Packed with --ignore-scripts: the prepare/prepack builds clean dist/, which the other test files
// are running from. dist/ is already built by `npm test`; the bench package compiles on its own.
function pack (cwd: string, dir: string): { filename: string, shipped: string[] } {
  const packed = execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd, encoding: 'utf8' })
  const [result] = JSON.parse(packed) as Array<{ filename: string, files: Array<{ path: string }> }>
  assert.ok(result !== undefined)
  return { filename: join(dir, result.filename), shipped: result.files.map((f) => f.path) }
}

test('the store package depends on piscina, fast-json-stringify, signal-exit, fs-native-extensions and ajv (validation on load) only; the bench tools are its own package', () => {
  const store = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>, bin?: unknown }
  assert.deepEqual(Object.keys(store.dependencies).sort(), ['ajv', 'ajv-formats', 'fast-json-stringify', 'fs-native-extensions', 'piscina', 'signal-exit'])
  assert.equal(store.bin, undefined)
  const bench = JSON.parse(readFileSync(join(root, 'bench', 'package.json'), 'utf8')) as { dependencies: Record<string, string>, peerDependencies: Record<string, string> }
  assert.deepEqual(Object.keys(bench.dependencies).sort(), ['tinybench', 'write-file-atomic'])
  assert.deepEqual(Object.keys(bench.peerDependencies), ['offload-store'])
})

test('both packed tarballs install into a fresh project and work by their package names', { timeout: 180_000 }, () => {
  const dir = tempDir('offload-store-pack-')
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'bench', 'tsconfig.json')], { stdio: 'pipe' })
  const store = pack(root, dir)
  assert.ok(store.shipped.includes('dist/src/index.js'))
  assert.ok(store.shipped.includes('dist/workers/writer.js'))
  assert.ok(store.shipped.includes('dist/workers/keyed-writer.js'))
  assert.equal(store.shipped.filter((path) => /^(dist\/)?(test|bench|examples)\//.test(path)).length, 0, 'no tests, benchmarks or examples in the store package')
  const bench = pack(join(root, 'bench'), dir)
  assert.ok(bench.shipped.includes('dist/cli.js'), 'the bin ships')
  assert.ok(bench.shipped.includes('gate.config.json'), 'the default thresholds ship')
  assert.ok(!bench.shipped.some((path) => path.startsWith('dist/chart') || path.startsWith('dist/index')), 'the suite driver and its chart (dev-only vega) do not ship')

  const project = join(dir, 'project')
  execFileSync('mkdir', ['-p', project])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }))
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', store.filename, bench.filename], { cwd: project, stdio: 'pipe' })
  writeFileSync(join(project, 'use.mjs'), `
    import { Store, KeyedStore, ShutdownRegistry, codecs } from 'offload-store'
    import { readFileSync } from 'node:fs'
    const shutdown = new ShutdownRegistry()
    const store = new Store({ path: './data/settings.json', shutdownRegister: shutdown.register, codec: codecs.json({ space: 1 }) })
    await store.save({ installed: true })
    const keyed = new KeyedStore({ path: './data/map.json', shutdownRegister: shutdown.register })
    await keyed.load()
    keyed.set('k', 1)
    await shutdown.flush()
    await store.close()
    await keyed.close()
    console.log(readFileSync('./data/settings.json', 'utf8').replace(/\\s/g, ''), readFileSync('./data/map.json', 'utf8'))
  `)
  const out = execFileSync(process.execPath, ['use.mjs'], { cwd: project, encoding: 'utf8' })
  assert.equal(out.trim(), '{"installed":true} {"k":1}')
  assert.ok(readdirSync(join(project, 'node_modules', 'offload-store', 'dist', 'workers')).includes('writer.js'))

  // The bin, as a user's CI would run it: their codec module and a sample of their data.
  writeFileSync(join(project, 'codec.mjs'), 'export function encode (value) { return JSON.stringify(value) }\nexport function decode (bytes) { return JSON.parse(Buffer.from(bytes).toString()) }\n')
  writeFileSync(join(project, 'state.json'), JSON.stringify({ items: [1, 2, 3] }))
  const bin = join(project, 'node_modules', '.bin', 'offload-store-bench')
  let report: string
  try {
    report = execFileSync(bin, ['--codec', './codec.mjs', '--sample', './state.json', '--json', '--duration', '200', '--pattern', 'save-10ms'], { cwd: project, encoding: 'utf8' })
  } catch (err) {
    // A gate verdict of "fail" exits 1 on a noisy machine; the JSON is still printed.
    report = (err as { stdout: string }).stdout
  }
  const parsed = JSON.parse(report) as { gate?: { pass?: unknown } }
  assert.equal(typeof parsed.gate?.pass, 'boolean')
})
