import { rename } from 'node:fs/promises'

/** The name a corrupt file is moved to: beside it, stamped with the time, never overwriting. */
export function quarantinePathFor (path: string, now = new Date()): string {
  return `${path}.corrupt.${now.toISOString().replace(/[:.]/g, '-')}`
}

/** Moves a file that could not be decoded out of the way, as Home Assistant does; returns where it went. */
export async function quarantine (path: string): Promise<string> {
  const target = quarantinePathFor(path)
  await rename(path, target)
  return target
}
