import { createRequire } from 'node:module'
import { type StoreErrorContext, StoreDecodeError } from './errors.js'

// Validation on load, on the main thread, where load() decodes: a Standard Schema validator is a
// function object and cannot cross to a worker, and a JSON Schema is compiled here once per schema.

/** A path segment of a Standard Schema issue. */
type PathSegment = PropertyKey | { readonly key: PropertyKey }

/** One problem a Standard Schema validator reports. */
export interface StandardSchemaIssue {
  readonly message: string
  readonly path?: readonly PathSegment[] | undefined
}

/** What `~standard.validate` returns: the (possibly transformed) value, or the issues. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output, readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] }

/** The Standard Schema interface (v1), as far as validation needs it: zod, valibot, arktype... implement it. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>
    /** Phantom: the input type. */
    readonly types?: { readonly input: Input, readonly output: Output } | undefined
  }
}

/** What load() checks a codec's value against. */
export type LoadValidation =
  | { readonly jsonSchema: object, readonly standard?: undefined }
  | { readonly standard: StandardSchemaV1, readonly jsonSchema?: undefined }

interface AjvError { readonly instancePath: string, readonly keyword: string, readonly message?: string | undefined }
type AjvValidate = ((value: unknown) => boolean) & { errors?: readonly AjvError[] | null }
interface AjvInstance { compile: (schema: object) => AjvValidate }

// ajv and ajv-formats are CommonJS; loaded on the first validated load only.
const require = createRequire(import.meta.url)
const compiled = new WeakMap<object, AjvValidate>()

function compile (schema: object): AjvValidate {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    const Ajv = require('ajv') as new (options: object) => AjvInstance
    const addFormats = require('ajv-formats') as (ajv: AjvInstance) => void
    // strict: false, because schemas written for fast-json-stringify may carry its own keywords.
    const ajv = new Ajv({ allErrors: false, strict: false, logger: false })
    addFormats(ajv)
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}

const identifier = /^[A-Za-z_$][\w$]*$/

function pathOf (segments: readonly PropertyKey[]): string {
  let path = '$'
  for (const segment of segments) {
    if (typeof segment === 'number' || (typeof segment === 'string' && /^(0|[1-9]\d*)$/.test(segment))) path += `[${String(segment)}]`
    else if (typeof segment === 'string' && identifier.test(segment)) path += `.${segment}`
    else path += `[${JSON.stringify(String(segment))}]`
  }
  return path
}

/** An ajv instancePath (`/items/2/price`) as `$.items[2].price`. */
function ajvPath (instancePath: string): string {
  if (instancePath === '') return '$'
  return pathOf(instancePath.slice(1).split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~')))
}

/**
 * Checks what load() is about to return against the codec's validation, if it has one, and
 * returns the value to hand out (a Standard Schema validator's output). A violation throws
 * `ERR_STORE_DECODE` naming the first failing path, so `onCorrupt: 'quarantine'` applies to it.
 */
export async function validateLoaded<T> (validation: LoadValidation | undefined, value: T, context: StoreErrorContext): Promise<T> {
  if (validation === undefined) return value
  if (validation.standard !== undefined) {
    let result: StandardSchemaResult<unknown>
    try {
      result = await validation.standard['~standard'].validate(value)
    } catch (err) {
      throw new StoreDecodeError(`the validator threw on the loaded value: ${(err as Error).message}`, { ...context, cause: err })
    }
    if (result.issues === undefined) return result.value as T
    const [first] = result.issues
    const path = pathOf((first?.path ?? []).map((segment) => typeof segment === 'object' && segment !== null ? segment.key : segment))
    throw new StoreDecodeError(`the file's value fails validation at ${path}: ${first?.message ?? 'invalid'}${result.issues.length > 1 ? ` (and ${result.issues.length - 1} more issue(s))` : ''}`, context)
  }
  const validate = compile(validation.jsonSchema)
  if (validate(value)) return value
  const first = validate.errors?.[0]
  throw new StoreDecodeError(`the file's value fails validation at ${ajvPath(first?.instancePath ?? '')}: ${first?.message ?? 'invalid'} (keyword ${JSON.stringify(first?.keyword ?? '?')})`, context)
}
