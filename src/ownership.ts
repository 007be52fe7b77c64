import type { ResolvedBaseOptions } from './base-options.js'
import { StorePathInUseError } from './errors.js'
import { type UnsavedState, watchUntilExit } from './exit-watch.js'
import type { ShutdownFlush } from './shutdown.js'

// Who owns a store's file. Within a process: one open store per resolved path, because two stores
// writing one file would each be single-flight on their own and still interleave.
const claimed = new Set<string>()

/**
 * Makes the store the owner of its file for its whole life: claims the path for this process,
 * registers its shutdown flush (exactly once), and watches its unwritten data until exit (`state`
 * is its write scheduler). A failed registration releases the claim, so a store that never
 * existed holds nothing. Returns `release()`, for `close()`: it drops the claim, unregisters the
 * flush (when the register function returned a way to) and ends the watch. Idempotent.
 */
export function takeOwnership (options: ResolvedBaseOptions<unknown>, flush: ShutdownFlush, state: UnsavedState): () => void {
  const { path, name } = options
  if (claimed.has(path)) {
    throw new StorePathInUseError('another open store already owns this path; close() it first', { store: name, path })
  }
  claimed.add(path)
  let unregister: unknown
  try {
    unregister = options.shutdownRegister(flush, { name, path })
  } catch (err) {
    claimed.delete(path)
    throw err
  }
  const unwatch = watchUntilExit({ name, path, logger: options.logger, flush, state })
  let released = false
  return () => {
    if (released) return
    released = true
    unwatch()
    claimed.delete(path)
    if (typeof unregister === 'function') unregister()
  }
}
