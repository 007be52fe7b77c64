import { lstatSync } from 'node:fs'
import { dirname } from 'node:path'
import { performance } from 'node:perf_hooks'
import { invalid, type ResolvedBaseOptions } from './base-options.js'
import { type StoreErrorContext, StoreClosedError, StoreLockedError, StorePathInUseError, StoreReadError, StoreWriteError } from './errors.js'
import { type UnsavedState, watchUntilExit } from './exit-watch.js'
import { closeLockFile, identityOf, type LockHolder, lockPathFor, openLockFile, readHolder, reservedNameProblem, thisHolder, tryLock, writeHolder } from './lock-file.js'
import { makeDirectory } from './make-directory.js'
import type { ShutdownFlush } from './shutdown.js'
import type { PostgresTarget } from './postgres.js'

// Who owns a store's file. Across processes (and threads): the lock in lock-file.ts, held from the
// moment ownership is taken until close() or the process's death. Within this module's process:
// one open store per file identity (directory device and inode plus name), so every spelling of a
// path, including the journal's, meets the first store at once with ERR_STORE_PATH_IN_USE.

/** A store's ownership of its file, from {@link takeOwnership}. */
export interface Ownership {
  /** True while this store holds the lock. */
  readonly owned: boolean
  /**
   * Resolves once the store owns its file, waiting up to `lockTimeout` for another owner to let go
   * (then `ERR_STORE_LOCKED`). A `'read'` also resolves, unowned, when the directory does not let
   * this process create the lock file (read-only): this process cannot write there either.
   */
  ready: (purpose: 'read' | 'write') => Promise<void>
  /** Drops the lock and the claim, unregisters the shutdown flush, ends the exit watch. Idempotent. */
  release: () => void
}

const claims = new Map<string, Claim>()

/** Longest pause between two attempts while another owner holds the lock, in ms. */
const MAX_POLL_MS = 100
/** Errors of creating the lock file that mean this process cannot write in the directory at all. */
const READ_ONLY = new Set(['EACCES', 'EPERM', 'EROFS'])

/**
 * Makes the store the owner of its file for its whole life: claims the file's identity in this
 * process (a second store on any name of it throws `ERR_STORE_PATH_IN_USE`), takes the lock at once
 * when the file is free, registers its shutdown flush (exactly once), and watches its unwritten
 * data until exit (`state` is its write scheduler). When another process holds the lock, the
 * store's first read or write waits for it ({@link Ownership.ready}). A failed registration
 * releases everything, so a store that never existed holds nothing. A store with a PostgreSQL
 * target takes no file lock and no claim: its lease is its ownership, and it is owned from the start.
 * @throws `ERR_STORE_INVALID_OPTION` for a path whose name stores reserve (`.<name>.lock`, temp names).
 */
export function takeOwnership (options: ResolvedBaseOptions<unknown>, flush: ShutdownFlush, state: UnsavedState): Ownership {
  const { path, name } = options
  const problem = reservedNameProblem(path)
  if (problem !== undefined) invalid(options, 'path', `names a file no store may use: it ${problem}`, path)
  // A PostgreSQL target's owner is whoever holds its lease (src/postgres-lease.ts): replicas on one
  // machine must meet there, not on a lock file, and the directory of `path` need not exist.
  const claim = options.target === undefined ? new Claim(options) : undefined
  const leaseKey = options.target === undefined ? undefined : claimLease(options, options.target)
  let unregister: unknown
  try {
    claim?.tryNow()
    unregister = options.shutdownRegister(flush, { name, path })
  } catch (err) {
    claim?.release()
    if (leaseKey !== undefined) leases.delete(leaseKey)
    throw err
  }
  const unwatch = watchUntilExit({ name, path, logger: options.logger, flush, state })
  let released = false
  return {
    get owned () { return claim?.owned ?? true },
    ready: async (purpose) => { await claim?.ready(purpose) },
    release: () => {
      if (released) return
      released = true
      unwatch()
      claim?.release()
      if (leaseKey !== undefined) leases.delete(leaseKey)
      if (typeof unregister === 'function') unregister()
    }
  }
}

// The PostgreSQL leases open stores of this process hold or will take, by server, lease table and
// name. Two stores of one process on one lease would otherwise wait for each other until lockTimeout.
const leases = new Map<string, string>()

function claimLease (options: ResolvedBaseOptions<unknown>, target: PostgresTarget): string {
  const key = `${target.describe} ${target.tables.leases} ${options.name}`
  const other = leases.get(key)
  if (other !== undefined) {
    throw new StorePathInUseError(`another open store in this process (${other}) already owns the lease of ${JSON.stringify(options.name)} in ${target.tables.leases} on ${target.describe}; close() it first`, { store: options.name, path: options.path })
  }
  leases.set(key, options.path)
  return key
}

class Claim {
  readonly #options: ResolvedBaseOptions<unknown>
  readonly #lockPath: string
  readonly #keys = new Set<string>()
  #fd: number | undefined
  #holder: LockHolder | undefined
  #acquiring: Promise<void> | undefined
  #released = false
  #wake: (() => void) | undefined

  constructor (options: ResolvedBaseOptions<unknown>) {
    this.#options = options
    this.#lockPath = lockPathFor(options.path)
    this.#claim(identityOf(options.path))
  }

  get owned (): boolean {
    return this.#fd !== undefined
  }

  /**
   * Takes the lock now if the directory exists and nobody holds it. Any other outcome is left to
   * the first read or write, which creates the directory, waits, or reports the error there; only
   * a file with other names (hard links) is refused at once.
   */
  tryNow (): void {
    try {
      this.#attempt(false)
    } catch (err) {
      if (err instanceof StorePathInUseError) throw err
    }
  }

  async ready (purpose: 'read' | 'write'): Promise<void> {
    if (this.#fd !== undefined) return
    if (this.#released) throw new StoreClosedError('the store is closed', this.#context())
    this.#acquiring ??= this.#acquire().finally(() => { this.#acquiring = undefined })
    try {
      await this.#acquiring
    } catch (err) {
      if (err instanceof StoreLockedError || err instanceof StorePathInUseError || err instanceof StoreClosedError) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (purpose === 'read' && code !== undefined && READ_ONLY.has(code)) {
        this.#options.logger.debug({ store: this.#options.name, path: this.#options.path, lockFile: this.#lockPath, err }, 'the lock file cannot be created here (the directory is read-only to this process), so the file is read without owning it; a write takes ownership first')
        return
      }
      const message = `could not take ownership of the file (its lock file ${this.#lockPath}): ${(err as Error).message}`
      throw purpose === 'read' ? new StoreReadError(message, this.#context(err)) : new StoreWriteError(message, this.#context(err))
    }
  }

  release (): void {
    this.#released = true
    this.#wake?.()
    if (this.#fd !== undefined) closeLockFile(this.#fd)
    this.#fd = undefined
    for (const key of this.#keys) if (claims.get(key) === this) claims.delete(key)
    this.#keys.clear()
  }

  async #acquire (): Promise<void> {
    const { lockTimeoutMs, logger, name, path } = this.#options
    const start = performance.now()
    let pause = 2
    let warned = false
    for (;;) {
      if (this.#attempt(true)) {
        if (warned) logger.warn({ store: name, path, waitedMs: Math.round(performance.now() - start) }, 'took ownership of the file: the previous owner released it')
        return
      }
      const holder = this.#holder
      if (!warned) {
        warned = true
        logger.warn({ store: name, path, lockFile: this.#lockPath, holder, lockTimeoutMs }, `another process owns this file (${describe(holder)}); waiting up to ${lockTimeoutMs} ms for it to close the store or exit`)
      }
      const waited = performance.now() - start
      if (waited >= lockTimeoutMs) {
        throw new StoreLockedError(`another process owns this file: ${describe(holder)}; gave up after waiting ${Math.round(waited)} ms (lockTimeout ${lockTimeoutMs} ms)`, this.#context(), holder)
      }
      await this.#sleep(Math.min(pause, lockTimeoutMs - waited))
      if (this.#released) throw new StoreClosedError('the store was closed while it waited for ownership of its file', this.#context())
      pause = Math.min(pause * 2, MAX_POLL_MS)
    }
  }

  // One attempt, synchronous: open (creating the directory when `create`), lock, check the names.
  #attempt (create: boolean): boolean {
    if (this.#fd !== undefined) return true
    const { path, mode, name } = this.#options
    let fd: number
    try {
      fd = openLockFile(this.#lockPath, mode)
    } catch (err) {
      if (!create || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      makeDirectory(dirname(path), mode)
      fd = openLockFile(this.#lockPath, mode)
    }
    let locked = false
    try {
      // The directory exists now: its identity may differ from the ancestor's the claim began with.
      this.#claim(identityOf(path))
      locked = tryLock(fd, this.#lockPath)
      if (!locked) {
        this.#holder = readHolder(fd)
        return false
      }
      refuseOtherNames(path, this.#context())
      writeHolder(fd, thisHolder(name))
      this.#fd = fd
      return true
    } finally {
      if (this.#fd !== fd) closeLockFile(fd)
    }
  }

  #claim (key: string): void {
    if (this.#keys.has(key)) return
    const other = claims.get(key)
    if (other !== undefined && other !== this) {
      const same = other.#options.path === this.#options.path
      throw new StorePathInUseError(`another open store in this process already owns this file${same ? '' : ` (as ${other.#options.path})`}; close() it first`, this.#context())
    }
    claims.set(key, this)
    this.#keys.add(key)
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.#wake = done
    })
    this.#wake = undefined
  }

  #context (cause?: unknown): StoreErrorContext {
    return { store: this.#options.name, path: this.#options.path, cause }
  }
}

// A hard link gives the file a second name whose store would meet another lock: refused while
// other names exist. (A write replaces the inode, so a link made later names an old copy.)
function refuseOtherNames (path: string, context: StoreErrorContext): void {
  let nlink: number
  try {
    const stats = lstatSync(path)
    if (!stats.isFile()) return
    nlink = stats.nlink
  } catch {
    return
  }
  if (nlink > 1) throw new StorePathInUseError(`the file has ${nlink} names (hard links), and a store on another of them would not meet this one's lock; remove the other names (or copy the file) first`, context)
}

function describe (holder: LockHolder | undefined): string {
  if (holder === undefined) return 'its lock file does not say who it is yet'
  const self = holder.pid === process.pid ? ' (this process: a store in another thread)' : ''
  return `pid ${holder.pid}${self} on host ${JSON.stringify(holder.host)} since ${holder.since}${holder.store === undefined ? '' : `, store ${JSON.stringify(holder.store)}`}`
}
