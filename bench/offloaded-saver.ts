import diagnosticsChannel from 'node:diagnostics_channel'
import * as installed from 'offload-store'
import type { Codec, WriteEndMessage, WriterPool } from 'offload-store'
import type { Library } from './builds.js'
import type { Saver, WriteSample } from './saver.js'

/** An offload-store {@link Store} behind the {@link Saver} calls, its writes read from `offload-store:write:end`. */
export class OffloadedSaver implements Saver {
  readonly writes: WriteSample[] = []
  readonly store: InstanceType<Library['Store']>
  readonly #registry: InstanceType<Library['ShutdownRegistry']>

  /** `lib` is the build whose Store is measured: the installed one unless another is loaded (see builds.ts). */
  constructor (path: string, codec: Codec<unknown>, pool: WriterPool, lib: Library = installed) {
    const { Store, ShutdownRegistry } = lib
    this.#registry = new ShutdownRegistry()
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
