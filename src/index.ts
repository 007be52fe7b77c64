export { Store, type StoreOptions } from './store.js'
export { ShutdownRegistry, type ShutdownFlush, type ShutdownFlushInfo, type ShutdownRegister, type SignalHandlerOptions } from './shutdown.js'
export { WriterPool, type WriterPoolOptions } from './pool.js'
export { codecs, type Codec, type JsonCodecOptions, type SchemaCodecOptions, type ModuleCodecExports } from './codecs.js'
export {
  StoreError,
  StoreDecodeError,
  StoreReadError,
  StoreEncodeError,
  StoreWriteError,
  StoreDurabilityError,
  StoreDataCloneError,
  StorePathInUseError,
  StoreClosedError,
  StoreInvalidOptionError,
  errorCodes,
  type StoreErrorCode,
  type StoreErrorContext
} from './errors.js'
export { channels, type WriteStartMessage, type WriteEndMessage, type WriteErrorMessage } from './channels.js'
export type { Logger } from './logger.js'
export type { CodecSpec, Durability } from './protocol.js'
