import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type * as OffloadStore from 'offload-store'

/** The public API of one build of offload-store, as its `dist/src/index.js` exports it. */
export type Library = typeof OffloadStore

/** A build loaded into this process, and where it came from. */
export interface LoadedBuild {
  readonly lib: Library
  /** The `index.js` the build was imported from. */
  readonly entry: string
}

/**
 * Imports a build from a checkout (`<dir>/dist/src/index.js`) or a dist folder (`<dir>/src/index.js`).
 * Each build keeps its own module state, so two builds compared in one process share nothing but
 * the process; the build resolves its own dependencies (piscina) from where it lies.
 */
export async function loadBuild (dir: string): Promise<LoadedBuild> {
  const root = resolve(dir)
  const candidates = [join(root, 'dist', 'src', 'index.js'), join(root, 'src', 'index.js')]
  const entry = candidates.find((path) => existsSync(path))
  if (entry === undefined) throw new Error(`no build in ${root}: neither ${candidates.join(' nor ')} exists (run npm run build there first)`)
  const lib = await import(pathToFileURL(entry).href) as Library
  if (typeof lib.Store !== 'function' || typeof lib.WriterPool !== 'function') throw new Error(`${entry} does not export Store and WriterPool: not an offload-store build`)
  return { lib, entry }
}

/** The build installed as the `offload-store` package (the repository's own dist/ when run from a checkout). */
export async function installedBuild (): Promise<LoadedBuild> {
  const lib = await import('offload-store') as Library
  return { lib, entry: import.meta.resolve('offload-store') }
}
