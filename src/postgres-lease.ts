import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool } from 'pg'
import { type StoreErrorContext, StoreFencedError, StoreLockedError, StoreReadError, StoreVersionError, StoreWriteError } from './errors.js'
import type { Logger } from './logger.js'
import { channels, type LeaseLostMessage } from './channels.js'
import { createPool } from './postgres-pool.js'
import type { PostgresTarget } from './postgres.js'
import {
  acquireLeaseSql, createSchemaSql, deleteRowSql, leaseHolderSql, markSchemaSql, parseSchemaComment,
  readRowSql, releaseLeaseSql, renewLeaseSql, SCHEMA_VERSION, schemaLockKey, schemaVersionSql, TABLE_COLUMNS, tableLayoutSql
} from './postgres-sql.js'
import type { PostgresConnection, WriteTarget } from './protocol.js'
import { markPermanent } from './write-outcome.js'

// The main thread's side of a PostgreSQL target: the schema, the lease (take, renew, hand over)
// and reads. It only waits on the network; encoding and writing stay on the worker.

/** The main thread's pools, one per server, shared by its stores and ended when the last closes. */
const pools = new Map<string, { pool: Promise<Pool>, users: number }>()

function openPool (connection: PostgresConnection): { readonly pool: Promise<Pool>, readonly done: () => void } {
  const key = JSON.stringify(connection)
  let entry = pools.get(key)
  if (entry === undefined) {
    const pool = createPool(connection)
    entry = { pool, users: 0 }
    pools.set(key, entry)
  }
  const used = entry
  used.users++
  let done = false
  return {
    pool: used.pool,
    done: () => {
      if (done) return
      done = true
      if (--used.users > 0) return
      pools.delete(key)
      used.pool.then(async (pool) => { await pool.end() }).catch(() => {})
    }
  }
}

/**
 * Why the tables cannot be used as they are (a newer layout, or a table of another layout); the
 * lease turns it into `ERR_STORE_VERSION` naming the store. Not cached: a fixed table is rechecked.
 */
class TableRefused extends Error {}

/** Schemas already checked by this process, per server and table. */
const checkedSchemas = new Map<string, Promise<void>>()

/**
 * Makes sure the tables exist with this layout. Tables that all exist are only inspected, so a
 * role without CREATE rights (tables made once by an administrator) works; missing ones are
 * created, under an advisory lock so replicas starting together do not race on the catalog.
 */
async function ensureSchema (pool: Pool, target: PostgresTarget): Promise<void> {
  const key = JSON.stringify([target.connection, target.tables])
  let checked = checkedSchemas.get(key)
  if (checked === undefined) {
    checked = (async () => {
      const client = await pool.connect()
      try {
        const tables = Object.values(target.tables)
        const { rows: present } = await client.query<{ missing: boolean }>('SELECT to_regclass(t) IS NULL AS missing FROM unnest($1::text[]) AS t', [tables])
        if (present.some((row) => row.missing)) {
          await client.query('BEGIN')
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(target.tables)])
          const created = (await client.query<{ missing: boolean }>('SELECT to_regclass($1) IS NULL AS missing', [target.tables.rows])).rows[0]?.missing === true
          for (const sql of createSchemaSql(target.schema, target.tables)) await client.query(sql)
          // Marked only when made here: an existing unmarked table is checked, not claimed.
          if (created) await client.query(markSchemaSql(target.tables))
          await client.query('COMMIT')
        }
        const { rows } = await client.query<{ comment: unknown }>(schemaVersionSql(), [target.tables.rows])
        const version = parseSchemaComment(rows[0]?.comment)
        if (version !== undefined && version > SCHEMA_VERSION) {
          throw new TableRefused(`the table ${target.tables.rows} has the layout of offload-store schema ${version}, newer than this code's ${SCHEMA_VERSION}; refusing to use it`)
        }
        for (const table of ['rows', 'leases'] as const) {
          const problems = layoutProblems(TABLE_COLUMNS[table], (await client.query<{ column: string, type: string, is_unique: boolean }>(tableLayoutSql(), [target.tables[table]])).rows)
          if (problems.length > 0) {
            throw new TableRefused(`the table ${target.tables[table]} exists${version === undefined ? ' unmarked' : ''} with another layout than offload-store schema ${SCHEMA_VERSION} (${problems.join('; ')}); refusing to use it: give the target another table, or rename that one`)
          }
        }
        client.release()
      } catch (err) {
        client.release(true)
        throw err
      }
    })()
    checkedSchemas.set(key, checked)
    checked.catch(() => { checkedSchemas.delete(key) })
  }
  await checked
}

/** What a table lacks against the expected columns; empty when its layout serves. */
function layoutProblems (expected: ReadonlyArray<readonly [string, string]>, actual: ReadonlyArray<{ column: string, type: string, is_unique: boolean }>): string[] {
  const problems: string[] = []
  for (const [column, type] of expected) {
    const found = actual.find((row) => row.column === column)
    if (found === undefined) problems.push(`no column ${column} ${type}`)
    else if (found.type !== type) problems.push(`column ${column} is ${found.type}, not ${type}`)
  }
  if (actual.find((row) => row.column === 'name')?.is_unique === false) problems.push('name is not unique (no primary key or unique index on it alone)')
  return problems
}

/** What a lease needs to know about its store. */
export interface LeaseOwner {
  /** The store's key in the tables: its name. */
  readonly key: string
  readonly logger: Logger
  /** Names the store in an error. */
  readonly context: (cause?: unknown) => StoreErrorContext
}

/**
 * One store's lease on its PostgreSQL rows: taken on first use (waiting up to `lockTimeout` for
 * another owner to release or expire), renewed every third of `leaseMs`, released on close so the
 * next owner takes over at once. Its generation is the fencing token every write carries.
 */
export class PostgresLease {
  readonly #target: PostgresTarget
  readonly #owner: LeaseOwner
  readonly #id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  readonly #pool: { readonly pool: Promise<Pool>, readonly done: () => void }
  #generation: Promise<string> | undefined
  #held: string | undefined
  #lost: StoreFencedError | undefined
  #renewal: NodeJS.Timeout | undefined
  #released = false

  constructor (target: PostgresTarget, owner: LeaseOwner) {
    this.#target = target
    this.#owner = owner
    this.#pool = openPool(target.connection)
  }

  /** This owner's id in the lease table: host, pid and a random part. */
  get id (): string {
    return this.#id
  }

  /** Resolves with the fencing token, taking the lease first if needed; rejects `ERR_STORE_FENCED` once taken over. */
  async generation (): Promise<string> {
    if (this.#lost !== undefined) throw this.#lost
    this.#generation ??= this.#acquire()
    try {
      return await this.#generation
    } catch (err) {
      // A failure to reach the server is retried by the next call; a refusal is not cached either.
      this.#generation = undefined
      throw err
    }
  }

  /** The write target for a store's worker, carrying the current fencing token. */
  async writeTarget (version: number | null, minorVersion: number | null): Promise<WriteTarget> {
    return {
      kind: 'postgres',
      connection: this.#target.connection,
      tables: this.#target.tables,
      key: this.#owner.key,
      generation: await this.#writeGeneration(),
      version,
      minorVersion,
      describe: this.#target.describe
    }
  }

  /** The fencing token for a write; failing to reach the server to take the lease is a write error. */
  async #writeGeneration (): Promise<string> {
    try {
      return await this.generation()
    } catch (err) {
      if (err instanceof StoreFencedError || err instanceof StoreLockedError || err instanceof StoreVersionError) throw err
      throw new StoreWriteError(`could not take the lease on ${this.#target.describe}: ${(err as Error).message}`, this.#owner.context(err))
    }
  }

  async #acquire (): Promise<string> {
    const pool = await this.#pool.pool
    try {
      await ensureSchema(pool, this.#target)
    } catch (err) {
      if (err instanceof TableRefused) throw new StoreVersionError(err.message, this.#owner.context())
      throw err
    }
    const deadline = Date.now() + this.#target.lockTimeout
    const pause = Math.max(20, Math.min(250, Math.floor(this.#target.leaseMs / 4)))
    for (;;) {
      const { rows } = await pool.query<{ generation: string }>(acquireLeaseSql(this.#target.tables), [this.#owner.key, this.#id, this.#target.leaseMs])
      const generation = rows[0]?.generation
      if (generation !== undefined) {
        this.#held = generation
        this.#scheduleRenewal()
        return generation
      }
      if (Date.now() >= deadline) {
        const holder = await pool.query<{ owner: string, generation: string, live: boolean }>(leaseHolderSql(this.#target.tables), [this.#owner.key])
        const row = holder.rows[0]
        throw new StoreLockedError(`${row?.owner ?? 'another owner'} holds the lease (generation ${row?.generation ?? '?'}) and did not release it within lockTimeout (${this.#target.lockTimeout} ms)`, this.#owner.context())
      }
      await sleep(pause)
    }
  }

  #scheduleRenewal (): void {
    this.#renewal = setTimeout(() => { this.#renew().catch(() => {}) }, Math.floor(this.#target.leaseMs / 3))
    this.#renewal.unref()
  }

  async #renew (): Promise<void> {
    const held = this.#held
    if (held === undefined || this.#released) return
    try {
      const pool = await this.#pool.pool
      const { rowCount } = await pool.query(renewLeaseSql(this.#target.tables), [this.#owner.key, held, this.#target.leaseMs])
      if (rowCount !== 1) {
        this.#lose(held)
        return
      }
    } catch (err) {
      // The lease may still run out: writes stay valid until another owner takes it (they carry
      // the generation, not the expiry), and are fenced after.
      this.#owner.logger.warn({ store: this.#owner.key, err }, `renewing the lease on ${this.#target.describe} failed; retrying`)
    }
    if (!this.#released && this.#held === held) this.#scheduleRenewal()
  }

  /** Records that a write was fenced: the lease is gone, and every later write is refused at once. */
  fenced (): void {
    if (this.#held !== undefined) this.#lose(this.#held)
  }

  #lose (held: string): void {
    this.#held = undefined
    this.#lost = markPermanent(new StoreFencedError(`another owner took the lease over after generation ${held}; this store no longer writes (its later changes are refused, the new owner's data is untouched)`, this.#owner.context()))
    this.#owner.logger.error({ store: this.#owner.key, generation: held }, 'the lease was taken over by another owner; this store is fenced')
    // A server steps down on this at once, instead of serving stale memory until its next write.
    if (channels.leaseLost.hasSubscribers) {
      const { store = this.#owner.key, path = '' } = this.#owner.context()
      channels.leaseLost.publish({ store, path, generation: held, error: this.#lost } satisfies LeaseLostMessage)
    }
  }

  /** Reads the Store row's bytes (undefined: no row), after taking the lease so no other owner writes meanwhile. */
  async readRow (): Promise<Uint8Array | undefined> {
    try {
      await this.generation()
      const { rows } = await (await this.#pool.pool).query<{ data: Buffer }>(readRowSql(this.#target.tables), [this.#owner.key])
      return rows[0]?.data
    } catch (err) {
      if (err instanceof StoreFencedError || err instanceof StoreLockedError || err instanceof StoreVersionError) throw err
      throw new StoreReadError(`could not read from ${this.#target.describe}: ${(err as Error).message}`, this.#owner.context(err))
    }
  }

  /** Deletes the Store row under the fence. */
  async deleteRow (): Promise<void> {
    const generation = await this.#writeGeneration()
    let rowCount: number | null
    try {
      rowCount = (await (await this.#pool.pool).query(deleteRowSql(this.#target.tables), [this.#owner.key, generation])).rowCount
    } catch (err) {
      throw new StoreWriteError(`could not delete the row from ${this.#target.describe}: ${(err as Error).message}`, this.#owner.context(err))
    }
    if (rowCount !== 1) throw new StoreFencedError('another owner took the lease over; the row was not deleted', this.#owner.context())
  }

  /** Ends the lease (so the next owner takes over at once) and the renewal; idempotent, never throws. */
  async release (): Promise<void> {
    if (this.#released) return
    this.#released = true
    clearTimeout(this.#renewal)
    const held = this.#held
    this.#held = undefined
    try {
      if (held !== undefined) await (await this.#pool.pool).query(releaseLeaseSql(this.#target.tables), [this.#owner.key, held])
    } catch (err) {
      this.#owner.logger.warn({ store: this.#owner.key, err }, `releasing the lease on ${this.#target.describe} failed; the next owner waits for it to expire`)
    } finally {
      this.#pool.done()
    }
  }
}
