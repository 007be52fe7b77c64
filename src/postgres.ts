import { StoreInvalidArgumentError } from './errors.js'
import { describeConnection, tablesFor } from './postgres-sql.js'
import type { PostgresConnection, PostgresTables } from './protocol.js'

/** Options of {@link postgres}: where the rows live and how ownership is leased. */
export interface PostgresTargetOptions {
  /** A `postgres://` URL; or give `host`, `port`, `database`, `user`, `password`. */
  readonly connectionString?: string
  readonly host?: string
  readonly port?: number
  readonly database?: string
  readonly user?: string
  readonly password?: string
  /** The schema holding the tables, created when missing. @defaultValue 'public' */
  readonly schema?: string
  /** The base name of the tables (`<table>` for the rows, `<table>_leases`). @defaultValue 'offload_store' */
  readonly table?: string
  /**
   * How long a lease lasts unless renewed, in milliseconds; the owner renews it every third of
   * this. Another process takes a store over at most this long after its owner stopped renewing.
   * @defaultValue 10000
   */
  readonly leaseMs?: number
  /** How long taking a lease that another owner holds may wait before failing with `ERR_STORE_LOCKED`. @defaultValue 30000 */
  readonly lockTimeout?: number
  /** Server-side limit on one statement in milliseconds (`statement_timeout`); 0: none. @defaultValue 30000 */
  readonly statementTimeout?: number
  /** Milliseconds to wait for a connection. @defaultValue 10000 */
  readonly connectTimeout?: number
  /** Most connections each thread (the main one and each worker) opens to the server. @defaultValue 2 */
  readonly poolSize?: number
}

/** A validated PostgreSQL target, made by {@link postgres}, for a store's `target` option. */
export interface PostgresTarget {
  readonly kind: 'postgres'
  readonly connection: PostgresConnection
  readonly schema: string
  readonly tables: PostgresTables
  readonly leaseMs: number
  readonly lockTimeout: number
  /** Host, port and database, for messages; never the password. */
  readonly describe: string
}

const KNOWN = ['connectionString', 'host', 'port', 'database', 'user', 'password', 'schema', 'table', 'leaseMs', 'lockTimeout', 'statementTimeout', 'connectTimeout', 'poolSize']
const targets = new WeakSet<object>()

function bad (option: string, message: string, value: unknown): never {
  throw new StoreInvalidArgumentError(`postgres(): options.${option} ${message}, got ${option === 'password' || option === 'connectionString' ? typeof value : String(value)}`)
}

function ms (options: PostgresTargetOptions, name: 'leaseMs' | 'lockTimeout' | 'statementTimeout' | 'connectTimeout', fallback: number, min: number): number {
  const value = options[name] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) bad(name, `must be an integer >= ${min} (milliseconds)`, value)
  return value
}

function text (options: PostgresTargetOptions, name: 'connectionString' | 'host' | 'database' | 'user' | 'password' | 'schema' | 'table'): string | undefined {
  const value = options[name]
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) bad(name, 'must be a non-empty string', value)
  return value
}

/**
 * A PostgreSQL target for a store's `target` option: the store's data goes to rows written from
 * its worker thread, each write fenced by a lease (one owner per store across processes and
 * machines) and acknowledged after COMMIT. Needs the `pg` package installed beside this one.
 * @throws `ERR_STORE_INVALID_ARGUMENT` for an unknown or invalid option.
 * @example new Store({ path: 'settings.json', name: 'settings', target: postgres({ connectionString }), shutdownRegister })
 */
export function postgres (options: PostgresTargetOptions = {}): PostgresTarget {
  if (options === null || typeof options !== 'object') throw new StoreInvalidArgumentError(`postgres(options): options must be an object, got ${String(options)}`)
  for (const key of Object.keys(options)) if (!KNOWN.includes(key)) bad(key, `is not an option of postgres(); it accepts ${KNOWN.join(', ')}`, (options as Record<string, unknown>)[key])
  const port = options.port
  if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65535)) bad('port', 'must be a TCP port', port)
  const poolSize = options.poolSize ?? 2
  if (!Number.isInteger(poolSize) || poolSize < 1) bad('poolSize', 'must be an integer >= 1', poolSize)
  const connection: PostgresConnection = {
    connectionString: text(options, 'connectionString'),
    host: text(options, 'host'),
    port,
    database: text(options, 'database'),
    user: text(options, 'user'),
    password: text(options, 'password'),
    statementTimeout: ms(options, 'statementTimeout', 30_000, 0),
    connectTimeout: ms(options, 'connectTimeout', 10_000, 1),
    poolSize
  }
  const schema = text(options, 'schema') ?? 'public'
  const table = text(options, 'table') ?? 'offload_store'
  const target: PostgresTarget = Object.freeze({
    kind: 'postgres' as const,
    connection: Object.freeze(connection),
    schema,
    tables: Object.freeze(tablesFor(schema, table)),
    leaseMs: ms(options, 'leaseMs', 10_000, 100),
    lockTimeout: ms(options, 'lockTimeout', 30_000, 0),
    describe: describeConnection(connection)
  })
  targets.add(target)
  return target
}

/** True for a target made by {@link postgres} (a hand-built object could skip its checks). */
export function isPostgresTarget (value: unknown): value is PostgresTarget {
  return typeof value === 'object' && value !== null && targets.has(value)
}
