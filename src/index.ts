export { Store, type StoreOptions } from './store.js'
export { KeyedStore, type KeyedStoreOptions, type JournalOptions } from './keyed-store.js'
export { ShutdownRegistry, type ShutdownFlush, type ShutdownFlushInfo, type ShutdownRegister, type SignalHandlerOptions, type FlushOptions, type FlushReport } from './shutdown.js'
export { postgres, type PostgresTarget, type PostgresTargetOptions } from './postgres.js'
export { WriterPool, type WriterPoolOptions } from './pool.js'
export { codecs, type Codec, type JsonCodecOptions, type SchemaCodecOptions, type ModuleCodecExports, type GzipCodecOptions, type BrotliCodecOptions, type EncryptedCodecOptions, type EncryptionKey } from './codecs.js'
export type { StandardSchemaV1, StandardSchemaIssue, StandardSchemaResult } from './validation.js'
export {
  StoreError,
  StoreDecodeError,
  StoreReadError,
  StoreEncodeError,
  StoreWriteError,
  StoreDurabilityError,
  StoreDataCloneError,
  StorePathInUseError,
  StoreLockedError,
  StoreClosedError,
  StoreInvalidOptionError,
  StoreInvalidArgumentError,
  StoreStateError,
  StoreVersionError,
  StoreFlushTimeoutError,
  StoreFlushError,
  StoreFencedError,
  errorCodes,
  type StoreErrorCode,
  type StoreErrorContext
} from './errors.js'
export { channels, type LeaseLostMessage, type WriteStartMessage, type WriteEndMessage, type WriteErrorMessage } from './channels.js'
export type { Logger } from './logger.js'
export type { LockHolder } from './lock-file.js'
export type { StoreStats, LastWrite } from './telemetry.js'
export type { Migrate, VersionOptions } from './versioning.js'
export type { BaseStoreOptions } from './base-options.js'
export type { CodecSpec, Durability } from './protocol.js'
