import { closeSync, constants, fchmodSync, mkdirSync, openSync } from 'node:fs'
import { join, relative, sep } from 'node:path'

// Shared by the writer (before a first write) and ownership (before the lock file beside the
// store's file is created): both create the store's directory, and it must get one mode either way.

/** The mode for created parent directories: the file's mode plus search (x) wherever it grants read. */
export function directoryModeFor (fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2)
}

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/**
 * Creates `dir` and its missing parents with exactly {@link directoryModeFor} `fileMode`, whatever
 * the umask: mkdir applies the umask (0o770 became 0o750 under umask 022), so each directory this
 * call created is then given its mode with fchmod. Opened with O_NOFOLLOW, so a symlink put in
 * place of a new directory is not followed; directories that existed are left as they are.
 */
export function makeDirectory (dir: string, fileMode: number): void {
  const mode = directoryModeFor(fileMode)
  // mkdir with `mode` is never wider than `mode`: the directories are at most narrower until fixed.
  const first = mkdirSync(dir, { recursive: true, mode })
  if (first === undefined) return
  let created = first
  const below = relative(first, dir).split(sep).filter((part) => part.length > 0)
  for (let i = 0; ; i++) {
    const fd = openSync(created, DIRECTORY_FLAGS)
    try {
      fchmodSync(fd, mode)
    } finally {
      closeSync(fd)
    }
    const next = below[i]
    if (next === undefined) return
    created = join(created, next)
  }
}
