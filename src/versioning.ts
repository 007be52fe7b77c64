import { createHash } from 'node:crypto'
import { invalid } from './base-options.js'
import type { CodecSpec } from './protocol.js'

/** Turns data written by an older version of your code into the current shape. */
export type Migrate<T> = (oldVersion: number, oldMinorVersion: number, oldData: unknown) => T | Promise<T>

/** Versioning options of a Store, as Home Assistant's Store has them. */
export interface VersionOptions<T> {
  /** Major version of the data shape; the file then holds `{ version, minorVersion, data }`. */
  readonly version?: number
  /** Minor version: a newer minor than the code's still loads (compatible changes). @defaultValue 1 */
  readonly minorVersion?: number
  /** Called by `load()` for a file with an older version (or an older minor version). */
  readonly migrate?: Migrate<T>
}

/** The envelope a versioned store writes. */
export interface Envelope<T> {
  readonly version: number
  readonly minorVersion: number
  readonly data: T
}

/** Resolved versioning: undefined when the store is not versioned. */
export interface Versioning<T> {
  readonly version: number
  readonly minorVersion: number
  readonly migrate: Migrate<T> | undefined
}

function positiveInteger (name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) invalid(name, 'must be an integer >= 1', value)
  return value
}

/** Validates versioning options against the codec; only JSON codecs can carry the envelope. */
export function resolveVersioning<T> (options: VersionOptions<T>, codec: CodecSpec): Versioning<T> | undefined {
  const { version, minorVersion, migrate } = options
  if (version === undefined) {
    if (minorVersion !== undefined) invalid('minorVersion', 'needs options.version', minorVersion)
    if (migrate !== undefined) invalid('migrate', 'needs options.version', typeof migrate)
    return undefined
  }
  if (codec.kind !== 'json' && codec.kind !== 'schema') invalid('version', 'needs a JSON codec (codecs.json() or codecs.schema()): the envelope is JSON', codec.kind)
  if (migrate !== undefined && typeof migrate !== 'function') invalid('migrate', 'must be a function (oldVersion, oldMinorVersion, oldData) => data', migrate)
  return { version: positiveInteger('version', version), minorVersion: positiveInteger('minorVersion', minorVersion ?? 1), migrate }
}

/** A schema codec whose schema describes the envelope around the user's schema. */
export function envelopeCodec (codec: CodecSpec): CodecSpec {
  if (codec.kind !== 'schema') return codec
  const schema = {
    type: 'object',
    properties: { version: { type: 'integer' }, minorVersion: { type: 'integer' }, data: codec.schema },
    required: ['version', 'minorVersion', 'data']
  }
  return { ...codec, id: createHash('sha256').update(`envelope:${codec.id}`).digest('hex'), schema }
}

/** True when a decoded file is a versioned envelope rather than plain data. */
export function isEnvelope (decoded: unknown): decoded is Envelope<unknown> {
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) return false
  const candidate = decoded as Record<string, unknown>
  return typeof candidate['version'] === 'number' && 'data' in candidate &&
    Object.keys(candidate).every((key) => key === 'version' || key === 'minorVersion' || key === 'data')
}
