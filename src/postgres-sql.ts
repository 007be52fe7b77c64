import type { PostgresConnection, PostgresTables } from './protocol.js'

// The SQL both threads run, as pure functions of the table names: the main thread owns the schema,
// the lease and reads; a worker runs the fenced writes. Written once, here.

/** The version of the tables' layout; a table marked with a newer one is refused, not rewritten. */
export const SCHEMA_VERSION = 1

/** Quotes an SQL identifier (doubling embedded quotes), so any schema or table name is safe. */
function quoteIdent (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** The quoted names of the tables for a base table name in a schema. */
export function tablesFor (schema: string, table: string): PostgresTables {
  const q = (suffix: string): string => `${quoteIdent(schema)}.${quoteIdent(table + suffix)}`
  return { rows: q(''), leases: q('_leases') }
}

/** Host, port and database of a connection, for messages and logs; never its user or password. */
export function describeConnection (connection: PostgresConnection): string {
  let host = connection.host
  let port = connection.port
  let database = connection.database
  if (connection.connectionString !== undefined) {
    try {
      const url = new URL(connection.connectionString)
      host ??= url.hostname === '' ? undefined : decodeURIComponent(url.hostname)
      port ??= url.port === '' ? undefined : Number(url.port)
      database ??= url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined
    } catch {
      // Not a URL (a libpq key=value string): name nothing rather than risk printing a password.
    }
  }
  return `PostgreSQL database ${JSON.stringify(database ?? '(default)')} at ${host ?? 'localhost'}:${port ?? 5432}`
}

/**
 * Creates the tables when missing, under a transaction-scoped advisory lock so two processes
 * starting at once do not race on the catalog. The rows table's comment records the layout version.
 */
export function createSchemaSql (schema: string, tables: PostgresTables): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${tables.leases} (name text PRIMARY KEY, owner text NOT NULL, generation bigint NOT NULL, expires_at timestamptz NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${tables.rows} (name text PRIMARY KEY, version integer, minor_version integer, data bytea NOT NULL, generation bigint NOT NULL, updated_at timestamptz NOT NULL)`
  ]
}

/** Reads the layout version recorded on the rows table (null: unmarked). */
export function schemaVersionSql (): string {
  return "SELECT obj_description(to_regclass($1), 'pg_class') AS comment"
}

/** Marks the rows table with {@link SCHEMA_VERSION}. */
export function markSchemaSql (tables: PostgresTables): string {
  return `COMMENT ON TABLE ${tables.rows} IS 'offload-store schema ${SCHEMA_VERSION}'`
}

/** Parses the comment written by {@link markSchemaSql}; undefined for an unmarked table. */
export function parseSchemaComment (comment: unknown): number | undefined {
  if (typeof comment !== 'string') return undefined
  const match = /^offload-store schema (\d+)$/.exec(comment)
  return match?.[1] === undefined ? undefined : Number(match[1])
}

/**
 * The columns (name and `format_type`) each table of {@link createSchemaSql} must have, checked
 * before a table that already existed is used: a table of another layout is refused, not written.
 */
export const TABLE_COLUMNS: { readonly [Table in 'rows' | 'leases']: ReadonlyArray<readonly [column: string, type: string]> } = {
  rows: [['name', 'text'], ['version', 'integer'], ['minor_version', 'integer'], ['data', 'bytea'], ['generation', 'bigint'], ['updated_at', 'timestamp with time zone']],
  leases: [['name', 'text'], ['owner', 'text'], ['generation', 'bigint'], ['expires_at', 'timestamp with time zone']]
}

/** The columns of table $1 (a qualified name) with their types, and whether `name` alone is unique (the upserts' conflict target). */
export function tableLayoutSql (): string {
  return `SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL) AS is_unique
FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`
}

/**
 * Takes the lease for $1 as owner $2 for $3 milliseconds when it is free, expired or already
 * this owner's; each taking bumps the generation (the fencing token). No row: someone else holds it.
 */
export function acquireLeaseSql (tables: PostgresTables): string {
  return `INSERT INTO ${tables.leases} AS l (name, owner, generation, expires_at) VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, generation = l.generation + 1, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= clock_timestamp()
RETURNING generation::text AS generation`
}

/** Extends the lease of $1 held with generation $2 by $3 milliseconds; no row: it was taken over. */
export function renewLeaseSql (tables: PostgresTables): string {
  return `UPDATE ${tables.leases} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE name = $1 AND generation = $2 RETURNING 1`
}

/** Ends the lease of $1 held with generation $2 now, so the next owner takes it without waiting. */
export function releaseLeaseSql (tables: PostgresTables): string {
  return `UPDATE ${tables.leases} SET expires_at = '-infinity' WHERE name = $1 AND generation = $2`
}

/** Who holds the lease of $1, for the message when taking it times out. */
export function leaseHolderSql (tables: PostgresTables): string {
  return `SELECT owner, generation::text AS generation, expires_at > clock_timestamp() AS live FROM ${tables.leases} WHERE name = $1`
}

/**
 * The fence every write starts from: the lease row, still at generation $2, locked FOR SHARE so a
 * take-over waits for this write's COMMIT (and then sees it) instead of slipping in between.
 */
function fence (tables: PostgresTables): string {
  return `WITH fence AS (SELECT generation FROM ${tables.leases} WHERE name = $1 AND generation = $2 FOR SHARE)`
}

/** Upserts the Store row $1 at generation $2 (version $3.$4, bytes $5); no row returned: fenced. */
export function writeRowSql (tables: PostgresTables): string {
  return `${fence(tables)}
INSERT INTO ${tables.rows} AS r (name, version, minor_version, data, generation, updated_at)
SELECT $1, $3, $4, $5, fence.generation, clock_timestamp() FROM fence
ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, minor_version = EXCLUDED.minor_version, data = EXCLUDED.data, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at
WHERE r.generation <= EXCLUDED.generation
RETURNING 1`
}

/**
 * Confirms, without writing, that the Store row $1 is still this owner's: the lease is still at
 * generation $2 and the row was last written under it. No row: fenced (or the row was changed by
 * someone else), so an unchanged save must not be acknowledged.
 */
export function confirmRowSql (tables: PostgresTables): string {
  return `SELECT 1 FROM ${tables.leases} l JOIN ${tables.rows} r ON r.name = l.name AND r.generation = l.generation WHERE l.name = $1 AND l.generation = $2`
}

/** Deletes the Store row $1 under the fence of generation $2; returns the fence row when it held. */
export function deleteRowSql (tables: PostgresTables): string {
  return `${fence(tables)}, gone AS (DELETE FROM ${tables.rows} WHERE name = $1 AND EXISTS (SELECT 1 FROM fence)) SELECT 1 FROM fence`
}

/** Reads the Store row $1. */
export function readRowSql (tables: PostgresTables): string {
  return `SELECT data FROM ${tables.rows} WHERE name = $1`
}

// KeyedStore: one row per entry in `<table>_entries`, beside the two tables above. A third table
// needs no layout change to the others, so it is created when missing (CREATE TABLE IF NOT
// EXISTS) by the first KeyedStore that uses the table set, and SCHEMA_VERSION stays 1.

/** The quoted, schema-qualified name of the entries table of a table set (`<table>_entries`). */
export function entriesTable (tables: PostgresTables): string {
  // tables.rows is `"schema"."table"`, quoted by tablesFor: the suffix goes inside the last quote.
  return `${tables.rows.slice(0, -1)}_entries"`
}

/**
 * Creates the entries table when missing: one row per entry, the value's bytes as the codec wrote
 * them, and `position`, drawn from an identity as rows are inserted, which keeps the map's order.
 */
export function createEntriesSql (tables: PostgresTables): string {
  return `CREATE TABLE IF NOT EXISTS ${entriesTable(tables)} (name text NOT NULL, key text NOT NULL, value bytea NOT NULL, generation bigint NOT NULL, position bigint GENERATED ALWAYS AS IDENTITY, updated_at timestamptz NOT NULL, PRIMARY KEY (name, key))`
}

/** The advisory lock key under which a table set's tables are created, by either thread. */
export function schemaLockKey (tables: PostgresTables): string {
  return `offload-store:${tables.rows}`
}

/**
 * Locks the lease of store $1 at generation $2 FOR SHARE until the transaction ends; no row: the
 * store was taken over (fenced). A take-over waits for the COMMIT, then sees every change.
 */
export function fenceEntriesSql (tables: PostgresTables): string {
  return `SELECT 1 FROM ${tables.leases} WHERE name = $1 AND generation = $2 FOR SHARE`
}

/** Deletes the entries $2 (text[]) of store $1, in one statement. */
export function deleteEntriesSql (tables: PostgresTables): string {
  return `DELETE FROM ${entriesTable(tables)} WHERE name = $1 AND key = ANY($2::text[])`
}

/**
 * Upserts the entries $3 (text[]) with values $4 (bytea[]) of store $1 at generation $2, in one
 * statement; new keys are numbered in the order given, an existing key keeps its position.
 */
export function upsertEntriesSql (tables: PostgresTables): string {
  return `INSERT INTO ${entriesTable(tables)} AS e (name, key, value, generation, updated_at)
SELECT $1, u.key, u.value, $2, clock_timestamp() FROM unnest($3::text[], $4::bytea[]) WITH ORDINALITY AS u(key, value, i) ORDER BY u.i
ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at`
}

/**
 * A whole save as one autocommitted statement: locks the lease of store $1 at generation $2 FOR
 * SHARE, deletes the entries $3 (text[]) and upserts the entries $4 (text[]) with values $5
 * (bytea[]) only when that row is there, and returns it (no row: fenced, nothing applied). Read
 * three times, `fence` is computed once (every server version materializes such a CTE). The
 * sub-statements share one snapshot and their order is not defined, so a key must not be in both
 * $3 and $4: a save that moves a key (deleted and set again) runs the statements above, in turn.
 */
export function saveEntriesSql (tables: PostgresTables): string {
  return `WITH fence AS (SELECT 1 FROM ${tables.leases} WHERE name = $1 AND generation = $2 FOR SHARE),
gone AS (DELETE FROM ${entriesTable(tables)} WHERE name = $1 AND key = ANY($3::text[]) AND EXISTS (SELECT 1 FROM fence)),
kept AS (INSERT INTO ${entriesTable(tables)} AS e (name, key, value, generation, updated_at)
SELECT $1, u.key, u.value, $2, clock_timestamp() FROM unnest($4::text[], $5::bytea[]) WITH ORDINALITY AS u(key, value, i) WHERE EXISTS (SELECT 1 FROM fence) ORDER BY u.i
ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value, generation = EXCLUDED.generation, updated_at = EXCLUDED.updated_at)
SELECT 1 FROM fence`
}

/** Reads every entry of store $1 in the map's order. */
export function readEntriesSql (tables: PostgresTables): string {
  return `SELECT key, value FROM ${entriesTable(tables)} WHERE name = $1 ORDER BY position`
}
