import { randomBytes } from 'node:crypto'
import { closeSync, constants, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { Durability } from '../src/protocol.js'

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

/** The temp-file name for `target`: hidden, beside it, unpredictable, and always short enough to create. */
export function tempPathFor (target: string): string {
  let base = basename(target)
  // Cut the base by bytes, not characters, so a long UTF-8 name still fits NAME_MAX.
  while (Buffer.byteLength(base) > NAME_MAX - TEMP_OVERHEAD) base = base.slice(0, -1)
  return join(dirname(target), `.${base}.${randomBytes(RANDOM_BYTES).toString('hex')}.tmp`)
}

/** The mode for created parent directories: the file's mode plus search (x) wherever it grants read. */
export function directoryModeFor (fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2)
}

const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/**
 * Replaces `target` with `data` so that a reader, or the file after a crash, holds either the old
 * or the new content in full. Steps: exclusive temp file (mode set before any byte), write, fsync,
 * rename over the target, fsync the directory. The temp file never outlives a failure.
 */
export function atomicWriteSync (target: string, data: string | Uint8Array, mode: number, durability: Durability, temp = tempPathFor(target)): void {
  const dir = dirname(target)
  mkdirSync(dir, { recursive: true, mode: directoryModeFor(mode) })
  // O_EXCL + O_NOFOLLOW: a file or symlink planted at the temp name makes us fail, never follow it.
  const fd = openSync(temp, TEMP_FLAGS, mode)
  let renamed = false
  try {
    try {
      // The umask may have stripped bits from `mode`; fix them before the first byte is written.
      fchmodSync(fd, mode)
      const bytes = typeof data === 'string' ? Buffer.from(data) : data
      let offset = 0
      while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset)
      // Never retry fsync on this descriptor after a failure: the kernel may already have dropped
      // the dirty pages, so a second fsync could report success for data that is gone.
      if (durability !== 'none') fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, target)
    renamed = true
  } finally {
    if (!renamed) {
      try { unlinkSync(temp) } catch {}
    }
  }
  if (durability === 'full') {
    try {
      syncDirectory(dir)
    } catch (err) {
      throw new DirectorySyncError(err as NodeJS.ErrnoException)
    }
  }
}

/** Makes a rename or unlink in `dir` durable. */
export function syncDirectory (dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
