/**
 * Throws, naming the first entry that is not a finite number at least its minimum (0 when not
 * given): `gate config <prefix><name> must be a number >= <min>, got <value>`.
 */
export function requireNumbers (prefix: string, entries: ReadonlyArray<readonly [name: string, value: unknown, min?: number]>): void {
  for (const [name, value, min = 0] of entries) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) throw new TypeError(`gate config ${prefix}${name} must be a number >= ${min}, got ${String(value)}`)
  }
}
