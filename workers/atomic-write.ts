import { randomFillSync } from 'node:crypto'
import { closeSync, constants, fchmodSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { makeDirectory } from '../src/make-directory.js'
import type { Durability } from '../src/protocol.js'

export { directoryModeFor } from '../src/make-directory.js'

// Synchronous on purpose: this runs inside a worker, the thread that is meant to block. Async fs
// calls would queue on libuv's four-thread pool, which the main thread needs for its own I/O.

/** Longest file name most Linux and macOS file systems accept, in bytes. */
const NAME_MAX = 255
const RANDOM_BYTES = 8
/** `.` + base + `.` + 16 hex digits + `.tmp` */
const TEMP_OVERHEAD = 1 + 1 + RANDOM_BYTES * 2 + 4

/** Raised when the rename succeeded but the directory fsync did not: the new content is visible, durability unknown. */
export class DirectorySyncError extends Error {
  constructor (readonly original: NodeJS.ErrnoException) {
    super(original.message)
  }
}

/** The base of temp names for `target`, cut by bytes (not characters) so a long UTF-8 name still fits NAME_MAX. */
function tempBaseFor (target: string): string {
  let base = basename(target)
  while (Buffer.byteLength(base) > NAME_MAX - TEMP_OVERHEAD) base = base.slice(0, -1)
  return base
}

// Random bytes for temp names, drawn 64 names at a time: each call into the CSPRNG costs a
// getpid() (OpenSSL's fork check) and the binding's overhead, once per write otherwise.
const randomPool = Buffer.alloc(RANDOM_BYTES * 64)
let randomUsed = randomPool.byteLength

function randomHex (): string {
  if (randomUsed + RANDOM_BYTES > randomPool.byteLength) {
    randomFillSync(randomPool)
    randomUsed = 0
  }
  const hex = randomPool.toString('hex', randomUsed, randomUsed + RANDOM_BYTES)
  randomUsed += RANDOM_BYTES
  return hex
}

/** The temp-file name for `target`: hidden, beside it, unpredictable, and always short enough to create. */
export function tempPathFor (target: string): string {
  return join(dirname(target), `.${tempBaseFor(target)}.${randomHex()}.tmp`)
}

/** True when `name` (a bare file name) is one of the temp names {@link tempPathFor} can give for `target`. */
export function isTempNameFor (target: string, name: string): boolean {
  const prefix = `.${tempBaseFor(target)}.`
  if (!name.startsWith(prefix) || !name.endsWith('.tmp')) return false
  return /^[0-9a-f]{16}$/.test(name.slice(prefix.length, -'.tmp'.length))
}

const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/** Backoff, in ms, between attempts to open a file while the process or system is out of descriptors (~10 s in all). */
const OPEN_RETRY_DELAYS = [1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Blocks this thread for `ms`: we are in a worker, where blocking is the point, and the write must wait. */
function sleepSync (ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms)
}

/**
 * `openSync` that waits and retries while the process (EMFILE) or the system (ENFILE) has no
 * descriptor to spare: other stores close theirs within milliseconds, so waiting beats failing.
 */
function openWithRetry (path: string, flags: number, mode?: number): number {
  let waited = 0
  for (let attempt = 0; ; attempt++) {
    try {
      return openSync(path, flags, mode)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const delay = OPEN_RETRY_DELAYS[attempt]
      if ((code !== 'EMFILE' && code !== 'ENFILE') || delay === undefined) {
        if (code === 'EMFILE' || code === 'ENFILE') {
          (err as Error).message += ` (still out of file descriptors after waiting ${waited} ms; raise the limit, e.g. ulimit -n, or keep fewer files open)`
        }
        throw err
      }
      sleepSync(delay)
      waited += delay
    }
  }
}

/**
 * @internal Switches for tests of the writer itself, never set by a store: `temp` forces the first
 * temp name (to plant something there), `skipFileSync` weakens the writer to show that the
 * power-loss check can fail.
 */
export interface WriterTestSwitches {
  readonly temp?: string | undefined
  /** Skip the fsync of the temp file (the directory fsync still runs under `durability: 'full'`). */
  readonly skipFileSync?: boolean
}

/** Marks a failure after which a second attempt with a brand-new temp file is safe and may succeed. */
class FreshTempRetry extends Error {
  constructor (readonly original: unknown) {
    super('retry with a fresh temp file')
  }
}

// Targets this thread has written: their directory existed and their stale temps were removed.
// A directory listing on every write would cost O(entries in the directory) per save, and stale
// temps only appear when a process (or a terminated worker) died mid-write, so once per target per
// thread is enough: a new process or a replacement worker starts with an empty set.
const prepared = new Set<string>()

/**
 * Replaces `target` with `data` so that a reader, or the file after a crash, holds either the old
 * or the new content in full. Steps: exclusive temp file (mode set before any byte), write, fsync,
 * rename over the target, remove temp files a crash left for this target (on this thread's first
 * write of it), fsync the directory.
 * The temp file never outlives a failure.
 *
 * A failed fsync of the temp file, or a temp file that vanished before the rename (another process
 * writing the same path cleaned it up), is retried once with a new temp file; every other failure
 * is thrown at once, with a message that says why when the errno alone would not.
 */
export function atomicWriteSync (target: string, data: string | Uint8Array, mode: number, durability: Durability): void {
  atomicWriteSyncForTest(target, data, mode, durability, {})
}

/** @internal {@link atomicWriteSync} with {@link WriterTestSwitches}, for the writer's own tests. */
export function atomicWriteSyncForTest (target: string, data: string | Uint8Array, mode: number, durability: Durability, switches: WriterTestSwitches): void {
  const { temp } = switches
  const faults = switches
  const dir = dirname(target)
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const known = prepared.has(target)
  try {
    if (!known) makeDirectory(dir, mode)
    try {
      writeWithOneFreshRetry(target, bytes, mode, durability, temp, faults)
    } catch (err) {
      // The directory was removed since this thread last wrote here: create it again, once.
      if (!known || (err as NodeJS.ErrnoException).code !== 'ENOENT' || (err as NodeJS.ErrnoException).syscall !== 'open') throw err
      prepared.delete(target)
      makeDirectory(dir, mode)
      writeWithOneFreshRetry(target, bytes, mode, durability, undefined, faults)
    }
  } catch (err) {
    throw explain(err, target)
  }
  if (!prepared.has(target)) {
    removeStaleTemps(target)
    prepared.add(target)
  }
  if (durability === 'full') {
    try {
      syncDirectory(dir)
    } catch (err) {
      throw new DirectorySyncError(err as NodeJS.ErrnoException)
    }
  }
}

function writeWithOneFreshRetry (target: string, bytes: Uint8Array, mode: number, durability: Durability, temp: string | undefined, faults: WriterTestSwitches): void {
  for (let attempt = 1; ; attempt++) {
    try {
      writeAndRename(target, bytes, mode, durability, attempt === 1 && temp !== undefined ? temp : tempPathFor(target), faults)
      return
    } catch (err) {
      if (!(err instanceof FreshTempRetry)) throw err
      if (attempt >= 2) throw err.original
    }
  }
}

function writeAndRename (target: string, bytes: Uint8Array, mode: number, durability: Durability, temp: string, faults: WriterTestSwitches): void {
  // O_EXCL + O_NOFOLLOW: a file or symlink planted at the temp name makes us fail, never follow it.
  const fd = openWithRetry(temp, TEMP_FLAGS, mode)
  let renamed = false
  try {
    try {
      // The umask may have stripped bits from `mode`; fix them before the first byte is written.
      fchmodSync(fd, mode)
      let offset = 0
      while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset)
      if (durability !== 'none' && faults.skipFileSync !== true) {
        try {
          fsyncSync(fd)
        } catch (err) {
          // Never retry fsync on this descriptor: the kernel may already have dropped the dirty
          // pages and cleared the error, so a second fsync could report success for data that is
          // gone. This temp file is abandoned (unlinked below); a new one is written from scratch.
          throw new FreshTempRetry(err)
        }
      }
    } finally {
      closeSync(fd)
    }
    try {
      renameSync(temp, target)
    } catch (err) {
      // Our temp file is gone: a writer in another process cleaned it up as stale. Write a new one.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === temp) throw new FreshTempRetry(err)
      throw err
    }
    renamed = true
  } finally {
    if (!renamed) {
      try { unlinkSync(temp) } catch {}
    }
  }
}

/** Adds to an errno error's message what the errno alone does not say: why, and what to do. */
function explain (err: unknown, target: string): unknown {
  const e = err as NodeJS.ErrnoException
  if (!(err instanceof Error) || typeof e.code !== 'string') return err
  if (e.code === 'EBUSY' && e.syscall === 'rename') {
    e.message += ': the target is a mount point (for example a single file bind-mounted into a container, as a Docker file volume is), and rename() cannot replace a mount point; mount the directory that holds the file instead'
  } else if (e.code === 'ENAMETOOLONG') {
    const bytes = Buffer.byteLength(basename(target))
    e.message += bytes > NAME_MAX
      ? `: the file name is ${bytes} bytes, and file systems allow at most ${NAME_MAX} bytes per name; use a shorter name`
      : `: the path is ${Buffer.byteLength(target)} bytes, longer than this system allows; use a shorter path`
  } else if (e.code === 'EXDEV' && e.syscall === 'rename') {
    e.message += ': the target and its temp file are on different file systems (is the target itself a mount point?); mount the directory that holds the file instead'
  }
  return err
}

/**
 * Removes temp files a crash left beside `target`: only names {@link tempPathFor} gives for this
 * exact target, never anything else. Best effort: a failure here never fails the write.
 */
function removeStaleTemps (target: string): void {
  const dir = dirname(target)
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    if (!isTempNameFor(target, name)) continue
    // unlink removes a planted symlink itself, never what it points to.
    try { unlinkSync(join(dir, name)) } catch {}
  }
}

/** Makes a rename or unlink in `dir` durable. */
export function syncDirectory (dir: string): void {
  const fd = openWithRetry(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
