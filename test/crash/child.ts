// A crash-harness child: saves continuously into several stores, mixing save() and delaySave(),
// and reports on stdout, one line each, synchronously (a pipe write on Linux):
//   I <store> <version>   before a version is handed to the store (issued: it may be in flight)
//   A <store> <version>   after save() of that version resolved (acknowledged: it must survive)
// argv: dir, stores, bigShare, seed, then one base version per store (the highest issued by earlier runs).
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { Store, WriterPool } from '../../src/index.js'
import { seededRandom, valueFor } from './model.js'

const [dir, storesArg, bigShareArg, seedArg, ...bases] = process.argv.slice(2)
if (dir === undefined || storesArg === undefined || bigShareArg === undefined || seedArg === undefined) throw new Error('usage: child <dir> <stores> <bigShare> <seed> <base>...')
const random = seededRandom(Number(seedArg))
const stores = Number(storesArg)
const bigShare = Number(bigShareArg)
const silent = { error: () => {}, warn: () => {}, debug: () => {} }
const pool = new WriterPool({ maxThreads: 1 })

const sleeper = new Int32Array(new SharedArrayBuffer(4))
function report (line: string): void {
  // Synchronous, so a line is in the pipe before the next step; a full pipe (EAGAIN) is waited out.
  const bytes = Buffer.from(line + '\n')
  let offset = 0
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      Atomics.wait(sleeper, 0, 0, 1)
    }
  }
}

const pause = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function drive (s: number): Promise<void> {
  const store = new Store<ReturnType<typeof valueFor>>({ path: join(dir as string, `store-${s}.json`), shutdownRegister: () => {}, pool, logger: silent })
  let version = Number(bases[s] ?? 0)
  for (;;) {
    version++
    report(`I ${s} ${version}`)
    if (random() < 0.6) {
      const v = version
      await store.save(valueFor(s, v, bigShare))
      report(`A ${s} ${v}`)
    } else {
      // dataFn runs at write time and takes the newest version then: never newer than issued.
      store.delaySave(() => valueFor(s, version, bigShare), Math.floor(random() * 5))
      await pause(Math.floor(random() * 4))
    }
  }
}

report('R ready')
for (let s = 0; s < stores; s++) {
  drive(s).catch((err: unknown) => {
    report(`E ${s} ${JSON.stringify(String((err as Error).message))}`)
    process.exit(70)
  })
}
