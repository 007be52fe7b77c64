import { type BaseStoreOptions, Store } from '../../src/index.js'

/** Options of {@link WholeMapStore}: a KeyedStore's, so switching between the two changes one word. */
export interface WholeMapStoreOptions<V> extends BaseStoreOptions<Record<string, V>> {
  /** Debounce of the write that `set()` and `delete()` schedule. @defaultValue 1000 */
  readonly delayMs?: number
}

/**
 * A map kept whole in one {@link Store}, with the calls of a KeyedStore (`get`, `set`, `delete`,
 * `entries`, `size`, `load`, `saveNow`, `close`). The example uses it on PostgreSQL, where a
 * KeyedStore does not take a target yet; each write then sends the whole map, not the change.
 * Once KeyedStore accepts `target`, `new KeyedStore<string, V>(sameOptions)` replaces it.
 */
export class WholeMapStore<V> {
  readonly #store: Store<Record<string, V>>
  readonly #map = new Map<string, V>()
  readonly #delayMs: number
  // Runs at write time, so a write carries every change made before it started.
  readonly #snapshot = (): Record<string, V> => Object.fromEntries(this.#map)

  constructor (options: WholeMapStoreOptions<V>) {
    const { delayMs = 1000, ...storeOptions } = options
    this.#store = new Store<Record<string, V>>(storeOptions)
    this.#delayMs = delayMs
  }

  /** Entries in memory. */
  get size (): number { return this.#map.size }

  /** The entry in memory. */
  get (key: string): V | undefined { return this.#map.get(key) }

  /** Every entry in memory. */
  entries (): IterableIterator<[string, V]> { return this.#map.entries() }

  /** Sets the entry in memory and schedules a debounced write. */
  set (key: string, value: V): this {
    this.#map.set(key, value)
    this.#store.delaySave(this.#snapshot, this.#delayMs)
    return this
  }

  /** Deletes the entry in memory (true if it was there) and schedules a debounced write. */
  delete (key: string): boolean {
    const had = this.#map.delete(key)
    if (had) this.#store.delaySave(this.#snapshot, this.#delayMs)
    return had
  }

  /** Loads the stored map (on PostgreSQL: after taking the store's lease) and keeps it in memory. */
  async load (): Promise<ReadonlyMap<string, V>> {
    const stored = await this.#store.load()
    this.#map.clear()
    for (const [key, value] of Object.entries(stored ?? {})) this.#map.set(key, value)
    return this.#map
  }

  /** Writes what is pending now; resolves once every change made before the call is durable. */
  async saveNow (): Promise<void> {
    await this.#store.saveNow()
  }

  /** Flushes, then releases the store (on PostgreSQL: its lease, so the next owner takes over at once). */
  async close (): Promise<void> {
    await this.#store.close()
  }
}
