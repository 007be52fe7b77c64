import diagnosticsChannel from 'node:diagnostics_channel'
import type { StoreError } from './errors.js'

/** Published when a write is handed to a worker. */
export interface WriteStartMessage {
  readonly store: string
  readonly path: string
}

/** Published when a write is durable. */
export interface WriteEndMessage {
  readonly store: string
  readonly path: string
  /** Bytes written. */
  readonly bytes: number
  /** Milliseconds the worker spent encoding. */
  readonly encodeMs: number
  /** Milliseconds the worker spent writing (temp file to directory fsync). */
  readonly writeMs: number
  /**
   * Milliseconds the main thread spent on the write: `checkMs` plus posting the task to the worker.
   * Undefined when the write waited for a busy or starting worker, since the post then happens later.
   */
  readonly mainMs: number | undefined
  /** Of `mainMs`, the milliseconds spent checking the value and, for a Store, encoding (JSON) or copying it. */
  readonly checkMs: number
  /** Milliseconds from hand-off to acknowledgement. */
  readonly totalMs: number
}

/** Published when a write fails; `error` is the StoreError its caller sees. */
export interface WriteErrorMessage {
  readonly store: string
  readonly path: string
  readonly error: Error
}

/** Published when a PostgreSQL target's lease turns out to be taken over (at a renewal or a refused write); the store is fenced from then on. */
export interface LeaseLostMessage {
  readonly store: string
  readonly path: string
  /** The generation (fencing token) this store held. */
  readonly generation: string
  /** The `ERR_STORE_FENCED` error its later writes reject with. */
  readonly error: StoreError
}

/** The channels' names, for `diagnosticsChannel.subscribe(name, fn)`. */
export const channelNames = {
  writeStart: 'offload-store:write:start',
  writeEnd: 'offload-store:write:end',
  writeError: 'offload-store:write:error',
  leaseLost: 'offload-store:lease:lost'
} as const

/** `node:diagnostics_channel` channels, named `offload-store:write:*` and `offload-store:lease:lost`, as undici does for requests. */
export const channels = {
  /** {@link WriteStartMessage} */
  writeStart: diagnosticsChannel.channel(channelNames.writeStart),
  /** {@link WriteEndMessage} */
  writeEnd: diagnosticsChannel.channel(channelNames.writeEnd),
  /** {@link WriteErrorMessage} */
  writeError: diagnosticsChannel.channel(channelNames.writeError),
  /** {@link LeaseLostMessage} */
  leaseLost: diagnosticsChannel.channel(channelNames.leaseLost)
} as const
