import { createHash } from 'node:crypto'
import { closeSync, constants, fchmodSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { hostname } from 'node:os'
import { basename, dirname, join } from 'node:path'

// The lock behind a store's ownership: an exclusive open-file-description lock (Linux F_OFD_SETLK,
// flock(2) on macOS, LockFileEx on Windows, through fs-native-extensions) on a lock file beside the
// store's file. The kernel drops it when the descriptor closes, so a process that dies in any way
// (SIGKILL, OOM) releases it at once, and a power cut leaves nothing behind: there is no
// staleness to judge. The lock file is never replaced or deleted, so every name that reaches the
// directory (a symlinked directory, a bind mount, /proc/self/root/...) reaches one inode and one
// lock; the data file cannot carry the lock itself, because each write renames a new inode over it.

/** Who owns a store's file, as its lock file says; for messages and logs. */
export interface LockHolder {
  /** The owner's process id (on `host`). */
  readonly pid: number
  /** The owner's host name. */
  readonly host: string
  /** When it took ownership, as an ISO 8601 date. */
  readonly since: string
  /** The owning store's name. */
  readonly store?: string | undefined
}

interface NativeLocks {
  tryLock: (fd: number) => boolean
  unlock: (fd: number) => void
}

let native: NativeLocks | undefined

// Loaded on first use, so importing the library never fails on a platform without a prebuilt
// binary; a store there cannot take ownership, and says so when it needs it.
function locks (): NativeLocks {
  native ??= createRequire(import.meta.url)('fs-native-extensions') as NativeLocks
  return native
}

/** Longest file name most file systems accept, in bytes. */
const NAME_MAX = 255
const JOURNAL_SUFFIX = '.journal'

/**
 * The name whose lock a file shares: its own, less every trailing `.journal`. A keyed store writes
 * `<name>.journal` beside `<name>`, so a store opened on the journal (or on a journal's journal)
 * must meet the same lock as the store that owns it.
 */
function familyOf (name: string): string {
  let family = name
  while (family.endsWith(JOURNAL_SUFFIX) && family.length > JOURNAL_SUFFIX.length) family = family.slice(0, -JOURNAL_SUFFIX.length)
  return family
}

/**
 * The lock file's name for a store file named `name`: `.<family>.lock`. A family too long for
 * NAME_MAX once wrapped is cut (by bytes) and suffixed with a digest of the whole name, so two long
 * names never share a lock by accident.
 */
function lockNameFor (name: string): string {
  const family = familyOf(name)
  const plain = `.${family}.lock`
  if (Buffer.byteLength(plain) <= NAME_MAX) return plain
  const digest = createHash('sha256').update(family).digest('hex').slice(0, 16)
  let cut = family
  while (Buffer.byteLength(`.${cut}.${digest}.lock`) > NAME_MAX) cut = cut.slice(0, -1)
  return `.${cut}.${digest}.lock`
}

/** The lock file of the store file at `path` (resolved). */
export function lockPathFor (path: string): string {
  return join(dirname(path), lockNameFor(basename(path)))
}

/**
 * Why no store may use `path`, or undefined: the names a store's own machinery writes beside its
 * file. A store on a lock file would replace the inode others lock; one on a temp name would be
 * deleted as a crash's leftover by its neighbour's next write.
 */
export function reservedNameProblem (path: string): string | undefined {
  const name = basename(path)
  if (/^\..+\.lock$/.test(name)) return 'is the name of a lock file (.<name>.lock), which stores keep beside their files'
  if (/^\..+\.[0-9a-f]{16}\.tmp$/.test(name)) return 'is the name of a temp file (.<name>.<16 hex digits>.tmp), which stores create and clean up beside their files'
  return undefined
}

/**
 * Identity of the file at `path` for ownership: device and inode of its directory, plus its lock
 * name; every spelling of the directory gives the same key. When the directory does not exist yet,
 * the nearest existing ancestor's identity plus the rest of the path.
 */
export function identityOf (path: string): string {
  let dir = dirname(path)
  let rest = lockNameFor(basename(path))
  for (;;) {
    try {
      const stats = statSync(dir, { bigint: true })
      return `${stats.dev}:${stats.ino}/${rest}`
    } catch {
      const parent = dirname(dir)
      if (parent === dir) return `?/${rest}`
      rest = `${basename(dir)}/${rest}`
      dir = parent
    }
  }
}

const OPEN_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW
const CREATE_FLAGS = OPEN_FLAGS | constants.O_CREAT | constants.O_EXCL

/**
 * Opens the lock file at `lockPath`, creating it with exactly `mode` when it does not exist
 * (O_EXCL, then fchmod, so the umask cannot narrow it below what other owners need to open it).
 * Never follows a symlink; refuses anything but a regular file. Throws the errno error.
 */
export function openLockFile (lockPath: string, mode: number): number {
  let fd: number
  try {
    // Almost always there already: it is never deleted, and a failed open costs an error object.
    fd = openSync(lockPath, OPEN_FLAGS)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    try {
      fd = openSync(lockPath, CREATE_FLAGS, mode)
      try { fchmodSync(fd, mode) } catch {}
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      fd = openSync(lockPath, OPEN_FLAGS) // created by another process in between
    }
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd)
    throw Object.assign(new Error(`${lockPath} is not a regular file`), { code: 'EINVAL', path: lockPath })
  }
  return fd
}

/**
 * Takes the lock on `fd` without waiting; false when another open file description holds it (in
 * this process or another). Also false when `lockPath` no longer names the locked inode (it was
 * deleted or replaced since it was opened): that lock would exclude no one.
 */
export function tryLock (fd: number, lockPath: string): boolean {
  if (!locks().tryLock(fd)) return false
  let current: bigint | undefined
  try {
    current = statSync(lockPath, { bigint: true }).ino
  } catch {}
  if (current === fstatSync(fd, { bigint: true }).ino) return true
  locks().unlock(fd)
  return false
}

/** Bytes of the holder record: padded, so a shorter record covers a longer one without a truncate. */
const HOLDER_BYTES = 512

/**
 * Says who holds the lock, in the lock file, for whoever waits for it. Best effort. One pwrite of a
 * fixed-size record: no ftruncate, which on ext4 (auto_da_alloc) makes the next close flush the file.
 */
export function writeHolder (fd: number, holder: LockHolder): void {
  const record = Buffer.alloc(HOLDER_BYTES, ' ')
  record.write(JSON.stringify({ ...holder, store: holder.store !== undefined && holder.store.length > 256 ? `${holder.store.slice(0, 256)}...` : holder.store }))
  record[HOLDER_BYTES - 1] = 0x0a
  try {
    writeSync(fd, record, 0, HOLDER_BYTES, 0)
  } catch {}
}

/** What the lock file says about its holder; undefined when it says nothing readable (yet). */
export function readHolder (fd: number): LockHolder | undefined {
  try {
    const buffer = Buffer.alloc(HOLDER_BYTES)
    const read = readSync(fd, buffer, 0, buffer.byteLength, 0)
    const parsed = JSON.parse(buffer.toString('utf8', 0, read)) as Partial<LockHolder>
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string' || typeof parsed.since !== 'string') return undefined
    return { pid: parsed.pid, host: parsed.host, since: parsed.since, store: typeof parsed.store === 'string' ? parsed.store : undefined }
  } catch {
    return undefined
  }
}

/** This process, as a lock holder named `store`. */
export function thisHolder (store: string): LockHolder {
  return { pid: process.pid, host: hostname(), since: new Date().toISOString(), store }
}

/** Closes a lock file; closing drops the lock. */
export function closeLockFile (fd: number): void {
  try { closeSync(fd) } catch {}
}
