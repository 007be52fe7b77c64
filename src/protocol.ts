// The only thing src/ and workers/ share: the shapes of what crosses between them.
// Type-only on purpose: the worker must never pull main-thread state in with a runtime import.

/** A codec described as plain data, so it can cross to a worker thread. */
export type CodecSpec =
  | { readonly kind: 'json', readonly space?: number | string | undefined }
  | {
    readonly kind: 'schema'
    /** Cache key for the compiled serializer inside each worker. */
    readonly id: string
    readonly schema: object
    readonly largeArrayMechanism: 'default' | 'json-stringify'
    readonly largeArraySize: number
  }
  | { readonly kind: 'module', readonly url: string, readonly encode: string, readonly decode: string }
  | { readonly kind: 'raw' }

/** How far a write goes before it is acknowledged. */
export type Durability = 'full' | 'file' | 'none'

/** One write, as the worker receives it. */
export interface WriteTask {
  readonly path: string
  readonly mode: number
  readonly durability: Durability
  readonly codec: CodecSpec
  readonly value: unknown
}

/** Which step of a write failed; decides the error class on the main side. */
export type FailureStage = 'encode' | 'write' | 'dirsync'

/** An error flattened to data: a structured clone drops an error's class and its `code`. */
export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly stack?: string | undefined
  readonly code?: string | undefined
  readonly syscall?: string | undefined
  readonly path?: string | undefined
  readonly errno?: number | undefined
}

/** What the worker answers for one write. */
export type WriteResult =
  | {
    readonly ok: true
    readonly bytes: number
    readonly encodeMs: number
    readonly writeMs: number
  }
  | {
    readonly ok: false
    readonly stage: FailureStage
    readonly message: string
    readonly cause: SerializedError
  }
