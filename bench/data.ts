// Deterministic, realistic state: an array of device-like records, sized by serialized bytes.
// Seeded so every run (and every mode within a run) encodes exactly the same data.
import { seededRandom } from './seeded-random.js'

/** One record of the generated state, shaped like a typical entity registry entry. */
export interface BenchRecord {
  readonly id: string
  name: string
  area: string
  enabled: boolean
  value: number
  updatedAt: string
  tags: string[]
  attributes: { unit: string, precision: number, min: number, max: number }
}

/** The value every scenario saves. */
export interface BenchState {
  readonly version: number
  revision: number
  readonly records: BenchRecord[]
}

/** A JSON schema of {@link BenchState}, for the fast-json-stringify encoder. */
export const benchStateSchema = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    revision: { type: 'integer' },
    records: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          area: { type: 'string' },
          enabled: { type: 'boolean' },
          value: { type: 'number' },
          updatedAt: { type: 'string' },
          tags: { type: 'array', items: { type: 'string' } },
          attributes: {
            type: 'object',
            properties: {
              unit: { type: 'string' },
              precision: { type: 'integer' },
              min: { type: 'number' },
              max: { type: 'number' }
            }
          }
        }
      }
    }
  }
} as const

const AREAS = ['kitchen', 'living room', 'bedroom', 'garage', 'garden', 'office', 'hallway', 'attic']
const UNITS = ['°C', '%', 'W', 'kWh', 'lx', 'ppm']
const WORDS = ['sensor', 'light', 'switch', 'climate', 'cover', 'lock', 'fan', 'media', 'battery', 'motion']

function pick<T> (rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T
}

function makeRecord (rand: () => number, index: number): BenchRecord {
  const kind = pick(rand, WORDS)
  const area = pick(rand, AREAS)
  const tagCount = 1 + Math.floor(rand() * 3)
  return {
    id: `${kind}.${area.replace(' ', '_')}_${index.toString(36)}`,
    name: `${area} ${kind} ${index}`,
    area,
    enabled: rand() > 0.2,
    value: Math.round(rand() * 100_000) / 100,
    updatedAt: new Date(1_700_000_000_000 + Math.floor(rand() * 31_536_000_000)).toISOString(),
    tags: Array.from({ length: tagCount }, () => pick(rand, WORDS)),
    attributes: { unit: pick(rand, UNITS), precision: Math.floor(rand() * 4), min: 0, max: Math.round(rand() * 1000) }
  }
}

/** Builds a state whose `JSON.stringify` is about `targetBytes` long (within one record). */
export function generateState (targetBytes: number, seed = 42): BenchState {
  const rand = seededRandom(seed)
  const state: BenchState = { version: 1, revision: 0, records: [] }
  let bytes = JSON.stringify(state).length
  for (let i = 0; bytes < targetBytes; i++) {
    const record = makeRecord(rand, i)
    state.records.push(record)
    // +1 for the comma between records; exact enough, and far cheaper than re-stringifying.
    bytes += JSON.stringify(record).length + 1
  }
  return state
}

/** Changes one record in place, as a live server would between saves. */
export function mutateState (state: BenchState, step: number): void {
  state.revision = step
  const record = state.records[step % Math.max(1, state.records.length)]
  if (record !== undefined) record.value = (record.value + step) % 1000
}
