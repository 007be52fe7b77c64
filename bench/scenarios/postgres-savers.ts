import diagnosticsChannel from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { type Codec, type PostgresTarget, ShutdownRegistry, Store, type WriteEndMessage, type WriterPool } from 'offload-store'
import pg from 'pg'
import type { BenchEncoder } from '../encoders.js'
import { DebouncedInlineSaver } from '../inline-saver.js'
import { median } from '../percentiles.js'
import type { ThroughputPair } from '../run-result.js'
import type { Saver, WriteSample } from '../saver.js'

// The two sides of the PostgreSQL scenario: a Store with a PostgreSQL target, and what people do
// without it, encoding on the main thread and upserting with pg. Both write the same table shape.

/** Quotes an SQL identifier. */
function ident (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** The library's row layout (docs/postgres.md), for the bare loop's own table. */
export function createBareTableSql (table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${ident(table)} (name text PRIMARY KEY, version integer, minor_version integer, data bytea NOT NULL, generation bigint NOT NULL, updated_at timestamptz NOT NULL)`
}

/**
 * One autocommitted upsert of row $1 with bytes $2: a single round trip, acknowledged after COMMIT,
 * the least any durable writer of a row does (the library's write adds its fence to the same statement).
 */
export function bareUpsertSql (table: string): string {
  return `INSERT INTO ${ident(table)} AS r (name, version, minor_version, data, generation, updated_at) VALUES ($1, NULL, NULL, $2, 1, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at`
}

/** A {@link Store} with a PostgreSQL target behind the {@link Saver} calls; its writes read from `offload-store:write:end`. */
export class PostgresOffloadedSaver implements Saver {
  readonly writes: WriteSample[] = []
  readonly #store: Store<unknown>

  constructor (path: string, name: string, codec: Codec<unknown>, pool: WriterPool, target: PostgresTarget) {
    // As the file saver: every save writes, and no hand-off warnings on stderr.
    this.#store = new Store<unknown>({ path, name, codec, pool, target, shutdownRegister: new ShutdownRegistry().register, skipUnchanged: false, handoffWarnMs: Infinity })
    diagnosticsChannel.subscribe('offload-store:write:end', this.#onWriteEnd)
  }

  readonly #onWriteEnd = (message: unknown): void => {
    const end = message as WriteEndMessage
    if (end.path === this.#store.path) this.writes.push({ mainMs: end.mainMs, totalMs: end.totalMs })
  }

  async save (value: unknown): Promise<void> {
    await this.#store.save(value)
  }

  delaySave (fn: () => unknown, delayMs: number): void {
    this.#store.delaySave(fn, delayMs)
  }

  async close (): Promise<void> {
    try {
      await this.#store.close()
    } finally {
      diagnosticsChannel.unsubscribe('offload-store:write:end', this.#onWriteEnd)
    }
  }
}

/**
 * Encodes on the main thread at call time, then upserts with one pg.Client, the queries of
 * overlapping saves queued in call order; `delaySave` is the usual trailing debounce.
 */
export class PostgresInlineSaver extends DebouncedInlineSaver {
  readonly #client: Promise<pg.Client>
  readonly #sql: string
  readonly #key: string
  readonly #encoder: BenchEncoder
  #queue: Promise<unknown> = Promise.resolve()

  constructor (connectionString: string, table: string, key: string, encoder: BenchEncoder) {
    super()
    const client = new pg.Client({ connectionString })
    this.#client = client.connect().then(() => client)
    this.#client.catch(() => {}) // reported by the first save
    this.#sql = bareUpsertSql(table)
    this.#key = key
    this.#encoder = encoder
  }

  protected async write (value: unknown): Promise<void> {
    const client = await this.#client
    const start = performance.now()
    const encoded = this.#encoder.encodeInline(value)
    const data = typeof encoded === 'string' ? Buffer.from(encoded) : encoded
    // One query at a time on the connection, in call order (pg 9 drops its own queue).
    const writing = this.#queue.then(async () => await client.query(this.#sql, [this.#key, data]))
    this.#queue = writing.catch(() => {})
    const mainMs = performance.now() - start
    await writing
    this.writes.push({ mainMs, totalMs: performance.now() - start })
  }

  protected override async end (): Promise<void> {
    await (await this.#client).end()
  }
}

/** The library's entries layout (docs/postgres.md), for the bare keyed upserts' own table. */
export function createBareEntriesSql (table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${ident(table)} (name text NOT NULL, key text NOT NULL, value bytea NOT NULL, generation bigint NOT NULL, position bigint GENERATED ALWAYS AS IDENTITY, updated_at timestamptz NOT NULL, PRIMARY KEY (name, key))`
}

/**
 * Upserts the entries $2 (text[]) with values $3 (bytea[]) of store $1 in one autocommitted
 * statement, as the library's keyed write does inside its fenced transaction: the least a durable
 * writer of changed rows does, one round trip acknowledged after COMMIT.
 */
export function bareUpsertEntriesSql (table: string): string {
  return `INSERT INTO ${ident(table)} AS e (name, key, value, generation, updated_at)
SELECT $1, u.key, u.value, 1, clock_timestamp() FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS u(key, value, i) ORDER BY u.i
ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at`
}

/**
 * save against bare in `rounds` rounds, each rate taken by `rate`, the order reversed every other
 * round (the server's and the disk's speed drift): the medians of each and of the per-round ratios.
 */
export async function alternatingRates (rounds: number, rate: (op: () => Promise<unknown>) => Promise<number>, bare: () => Promise<unknown>, save: () => Promise<unknown>): Promise<Omit<ThroughputPair, 'payloadBytes'>> {
  const saves: number[] = []
  const bares: number[] = []
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      bares.push(await rate(bare))
      saves.push(await rate(save))
    } else {
      saves.push(await rate(save))
      bares.push(await rate(bare))
    }
  }
  const roundRatios = saves.map((s, i) => s / (bares[i] ?? NaN))
  return { saveOpsPerSec: median(saves), bareOpsPerSec: median(bares), ratio: median(roundRatios), roundRatios }
}
