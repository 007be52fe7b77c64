// One store per file per process: two stores writing one file would each be single-flight on their
// own and still interleave. Claims are by resolved path; the store releases its claim on close().
const claimed = new Set<string>()

/** Claims `path` for a store; false when another open store holds it. */
export function claimPath (path: string): boolean {
  if (claimed.has(path)) return false
  claimed.add(path)
  return true
}

/** Releases a claim made by {@link claimPath}. */
export function releasePath (path: string): void {
  claimed.delete(path)
}
