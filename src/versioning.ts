import { createHash } from 'node:crypto'
import { invalid, type OptionOwner } from './base-options.js'
import { baseOf, mapBase } from './codec-frames.js'
import type { CodecSpec } from './protocol.js'

/** Turns data written by an older version of your code into the current shape. */
export type Migrate<T> = (oldVersion: number, oldMinorVersion: number, oldData: unknown) => T | Promise<T>

/** Versioning options of a Store, as Home Assistant's Store has them. */
export interface VersionOptions<T> {
  /** Major version of the data shape; the file then holds Home Assistant's `{ version, minor_version, key, data }`. */
  readonly version?: number
  /** Minor version: a newer minor than the code's still loads (compatible changes). @defaultValue 1 */
  readonly minorVersion?: number
  /** Called by `load()` for a file with an older version (or an older minor version). */
  readonly migrate?: Migrate<T>
}

/**
 * The envelope a versioned store writes: Home Assistant's own, so files move between the two.
 * `key` is informational (Home Assistant names its file after it); this library writes the store's name.
 */
export interface Envelope<T> {
  readonly version: number
  readonly minor_version: number
  readonly key: string
  readonly data: T
}

/** What a versioned store read from an envelope, whichever of the accepted shapes it came in. */
export interface Unwrapped {
  readonly version: number
  readonly minorVersion: number
  readonly data: unknown
}

/** Resolved versioning: undefined when the store is not versioned. */
export interface Versioning<T> {
  readonly version: number
  readonly minorVersion: number
  readonly migrate: Migrate<T> | undefined
}

function positiveInteger (owner: OptionOwner, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) invalid(owner, name, 'must be an integer >= 1', value)
  return value
}

/** Validates versioning options against the codec; only JSON codecs can carry the envelope. */
export function resolveVersioning<T> (options: VersionOptions<T>, base: OptionOwner & { readonly codec: { readonly spec: CodecSpec } }): Versioning<T> | undefined {
  const { version, minorVersion, migrate } = options
  const codec = baseOf(base.codec.spec)
  if (version === undefined) {
    if (minorVersion !== undefined) invalid(base, 'minorVersion', 'needs options.version', minorVersion)
    if (migrate !== undefined) invalid(base, 'migrate', 'needs options.version', migrate)
    return undefined
  }
  if (codec.kind !== 'json' && codec.kind !== 'schema') invalid(base, 'version', 'needs a JSON codec (codecs.json() or codecs.schema()): the envelope is JSON', codec.kind)
  if (migrate !== undefined && typeof migrate !== 'function') invalid(base, 'migrate', 'must be a function (oldVersion, oldMinorVersion, oldData) => data', migrate)
  return { version: positiveInteger(base, 'version', version), minorVersion: positiveInteger(base, 'minorVersion', minorVersion ?? 1), migrate }
}

/** The envelope around `data` for a store of this version, named `key`. */
export function wrap<T> (versioning: Versioning<T>, key: string, data: T): Envelope<T> {
  return { version: versioning.version, minor_version: versioning.minorVersion, key, data }
}

/** A schema codec whose schema describes the envelope around the user's schema. */
export function envelopeCodec (spec: CodecSpec): CodecSpec {
  return mapBase(spec, (codec) => {
    if (codec.kind !== 'schema') return codec
    const schema = {
      type: 'object',
      properties: { version: { type: 'integer' }, minor_version: { type: 'integer' }, key: { type: 'string' }, data: codec.schema },
      required: ['version', 'minor_version', 'key', 'data']
    }
    return { ...codec, id: createHash('sha256').update(`envelope:${codec.id}`).digest('hex'), schema }
  })
}

const isVersion = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1

function hasExactly (candidate: Record<string, unknown>, required: readonly string[], optional: readonly string[]): boolean {
  const keys = Object.keys(candidate)
  return required.every((key) => Object.hasOwn(candidate, key)) &&
    keys.every((key) => required.includes(key) || optional.includes(key))
}

/**
 * Reads a decoded file as an envelope, or returns undefined when it is not one. Two shapes are
 * envelopes, and nothing else: Home Assistant's (`version`, `key`, `data`, and `minor_version`
 * except in files from before minor versions existed) and the one version 0.1.0 of this library
 * wrote (`version`, `minorVersion`, `data`). Requiring `key` (or `minorVersion`) keeps an app's
 * own `{ version, data }` from being taken for an envelope.
 */
export function unwrap (decoded: unknown): Unwrapped | undefined {
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) return undefined
  const candidate = decoded as Record<string, unknown>
  const version = candidate['version']
  if (!isVersion(version)) return undefined
  if (hasExactly(candidate, ['version', 'key', 'data'], ['minor_version']) && typeof candidate['key'] === 'string') {
    const minor = candidate['minor_version'] ?? 1
    return isVersion(minor) ? { version, minorVersion: minor, data: candidate['data'] } : undefined
  }
  if (hasExactly(candidate, ['version', 'minorVersion', 'data'], []) && isVersion(candidate['minorVersion'])) {
    return { version, minorVersion: candidate['minorVersion'], data: candidate['data'] }
  }
  return undefined
}
