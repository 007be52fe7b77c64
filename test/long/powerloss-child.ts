// The writer for the power-loss check: saves version after version of one file and prints each
// acknowledged version ("A <v>") as soon as its save returned. Runs until killed.
// argv: path, mode: full (through a Store) | nofilesync | nodirsync | none (atomicWriteSync weakened)
import { writeSync } from 'node:fs'
import { Store, WriterPool } from '../../src/index.js'
import { atomicWriteSyncForTest } from '../../workers/atomic-write.js'

const [path, mode = 'full'] = process.argv.slice(2)
if (path === undefined) throw new Error('usage: powerloss-child <path> [full|nofilesync|nodirsync|none]')
const valueFor = (v: number): string => JSON.stringify({ v, pad: String.fromCharCode(97 + (v % 26)).repeat(4096 + (v * 7919) % 60_000) })
const silent = { error: () => {}, warn: () => {}, debug: () => {} }
const store = new Store<unknown>({ path, shutdownRegister: () => {}, pool: new WriterPool({ maxThreads: 1 }), logger: silent })
writeSync(1, 'R\n')
for (let v = 1; ; v++) {
  try {
    if (mode === 'full') await store.save(JSON.parse(valueFor(v)))
    else atomicWriteSyncForTest(path, valueFor(v), 0o600, mode === 'nodirsync' ? 'file' : mode === 'none' ? 'none' : 'full', { skipFileSync: mode === 'nofilesync' })
  } catch (err) {
    writeSync(1, `E ${v} ${(err as { code?: string }).code ?? ''}\n`)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    continue
  }
  writeSync(1, `A ${v}\n`)
  // Give the event loop a turn (the weakened modes are synchronous).
  if (mode !== 'full') await new Promise((resolve) => setImmediate(resolve))
}
