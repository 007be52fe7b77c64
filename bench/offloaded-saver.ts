import diagnosticsChannel from 'node:diagnostics_channel'
import { type Codec, ShutdownRegistry, Store, type WriteEndMessage, type WriterPool } from 'offload-store'
import type { Saver, WriteSample } from './saver.js'

/** An offload-store {@link Store} behind the {@link Saver} calls, its writes read from `offload-store:write:end`. */
export class OffloadedSaver implements Saver {
  readonly writes: WriteSample[] = []
  readonly store: Store<unknown>
  readonly #registry = new ShutdownRegistry()

  constructor (path: string, codec: Codec<unknown>, pool: WriterPool) {
    // Every save is a real write, as in the inline mode: no skipping of unchanged bytes (the
    // throughput loop saves one value over and over), and no hand-off warnings on stderr.
    this.store = new Store<unknown>({ path, codec, pool, shutdownRegister: this.#registry.register, skipUnchanged: false, handoffWarnMs: Infinity })
    diagnosticsChannel.subscribe('offload-store:write:end', this.#onWriteEnd)
  }

  readonly #onWriteEnd = (message: unknown): void => {
    const end = message as WriteEndMessage
    if (end.path === this.store.path) this.writes.push({ mainMs: end.mainMs, totalMs: end.totalMs })
  }

  async save (value: unknown): Promise<void> {
    await this.store.save(value)
  }

  delaySave (fn: () => unknown, delayMs: number): void {
    this.store.delaySave(fn, delayMs)
  }

  async close (): Promise<void> {
    try {
      await this.store.close()
    } finally {
      diagnosticsChannel.unsubscribe('offload-store:write:end', this.#onWriteEnd)
    }
  }
}
