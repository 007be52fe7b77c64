// What the crash-harness children write, so the parent can check a file without trusting the child:
// version v of store s is { s, v, pad } with a pad whose length and letter follow from (s, v).

export { seededRandom } from '../../bench/seeded-random.js'

/** Deterministic pseudo-random in [0, 1) from two integers. */
function unit (s: number, v: number): number {
  let h = Math.imul(s + 1, 0x9e3779b1) ^ Math.imul(v + 1, 0x85ebca77)
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39)
  return ((h ^ (h >>> 15)) >>> 0) / 2 ** 32
}

/** The pad length of version v of store s: mostly 100 B..10 kB, some up to 500 kB, a few up to 5 MB. */
export function padSize (s: number, v: number, bigShare = 0.03): number {
  const r = unit(s, v)
  const span = unit(v, s)
  if (r < bigShare) return 500_000 + Math.floor(span * 4_500_000)
  if (r < 0.15) return 10_000 + Math.floor(span * 490_000)
  return 100 + Math.floor(span * 9_900)
}

/** The pad letter of version v. */
export function padLetter (v: number): string {
  return String.fromCharCode(97 + (v % 26))
}

/** The value a child saves as version v of store s. */
export function valueFor (s: number, v: number, bigShare?: number): { s: number, v: number, pad: string } {
  return { s, v, pad: padLetter(v).repeat(padSize(s, v, bigShare)) }
}

/** The seed of a run: the environment variable `env` when set (to replay a run), else a fresh one. */
export function runSeed (env = 'CRASH_SEED'): number {
  const given = process.env[env]
  return given === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(given)
}
