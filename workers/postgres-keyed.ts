import { performance } from 'node:perf_hooks'
import { workerData } from 'node:worker_threads'
import type { PoolClient } from 'pg'
import {
  createEntriesSql, deleteEntriesSql, entriesTable, fenceEntriesSql, readEntriesSql, saveEntriesSql, schemaLockKey, upsertEntriesSql
} from '../src/postgres-sql.js'
import { type KeyedOp, type KeyedRequest, type KeyedWorkerConfig, SPLIT_MIN_BYTES, type WriteResult } from '../src/protocol.js'
import { RUN_BYTES, splitMembers } from './json-members.js'
import { type Answer, serveKeyedRequests } from './keyed-port.js'
import { FencedWrite, namedStatement, poolFor } from './postgres-write.js'
import { joinOps, StagedOps } from './staged-ops.js'
import { serializeError } from './serialize-error.js'

// The pinned worker of a KeyedStore whose target is PostgreSQL: one row per entry. A save applies
// only the changed entries, in one transaction fenced by the lease (so the database's work, like
// the main thread's, is O(change)), and is acknowledged after COMMIT. That transaction is one
// autocommitted statement, one round trip, unless the save moves a key (see saveEntriesSql). It keeps no mirror: the file
// writer needs one to write the whole file, but here nothing is ever written whole.

const config = workerData as KeyedWorkerConfig
const target = config.target.kind === 'postgres' ? config.target : wrongTarget(config.target.kind)

function wrongTarget (kind: string): never {
  throw new Error(`postgres-keyed writes PostgreSQL rows, not a ${kind} target: this should not happen`)
}

const entries = entriesTable(target.tables)
// Named, so each connection parses and plans it once, not at every save (as the Store's write).
const saveStatement = namedStatement('keyed', saveEntriesSql(target.tables))
// Values that are not UTF-8 were not written by a store: refused on read, not patched over.
const utf8 = new TextDecoder('utf-8', { fatal: true })
let created: Promise<void> | undefined

/**
 * A connection checked out of the pool. A connection the server drops while it is checked out
 * (a restart) emits 'error' besides failing its query, and the pool listens only to idle ones:
 * unheard, that event would kill this thread. The query's rejection reports it.
 */
async function checkOut (): Promise<PoolClient> {
  const client = await (await poolFor(target.connection)).connect()
  client.on('error', ignore)
  return client
}

function checkIn (client: PoolClient, broken: boolean): void {
  client.off('error', ignore)
  client.release(broken)
}

function ignore (): void {}

/** Runs `work` on one connection; a failed one may be dead (a restart) or mid-answer, so it is never reused. */
async function onClient<R> (work: (client: PoolClient) => Promise<R>): Promise<R> {
  const client = await checkOut()
  try {
    const result = await work(client)
    checkIn(client, false)
    return result
  } catch (err) {
    checkIn(client, true)
    throw err
  }
}

/** Runs `work` in one transaction on one connection; a failed one is rolled back and its connection dropped. */
async function inTransaction<R> (work: (client: PoolClient) => Promise<R>): Promise<R> {
  const client = await checkOut()
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    checkIn(client, false)
    return result
  } catch (err) {
    // The connection may be dead (a restart) or in a failed transaction: never reused.
    await client.query('ROLLBACK').catch(() => {})
    checkIn(client, true)
    throw err
  }
}

/** Creates the entries table once per thread, under the advisory lock the main thread creates the others under. */
async function ensureEntries (): Promise<void> {
  if (created === undefined) {
    created = inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(target.tables)])
      await client.query(createEntriesSql(target.tables))
    })
    // Not kept when it failed (the server was down): the next save tries again.
    created.catch(() => { created = undefined })
  }
  await created
}

function fenced (generation: string): FencedWrite {
  return new FencedWrite(`the lease of ${JSON.stringify(target.key)} moved past generation ${generation}: another owner took this store over, so this save was refused (rolled back) and its rows left untouched`)
}

/** A save's changes: `moves` when a key is both deleted and set (deleted first, so it moves to the end). */
interface Changes { readonly deletes: string[], readonly keys: string[], readonly values: Buffer[], readonly bytes: number, readonly moves: boolean }

/** A save's ops as one set of deletes and one of upserts: a re-set key is deleted first, so it moves to the end. */
function split (ops: readonly KeyedOp[]): Changes {
  const deletes = new Set<string>()
  const sets = new Map<string, unknown>()
  for (const op of ops) {
    if (op.length === 1) {
      sets.delete(op[0])
      deletes.add(op[0])
    } else {
      sets.set(op[0], op[1])
    }
  }
  const keys: string[] = []
  const values: Buffer[] = []
  let bytes = 0
  let moves = false
  for (const [key, value] of sets) {
    if (deletes.has(key)) moves = true
    const text: unknown = JSON.stringify(value)
    if (typeof text !== 'string') throw new TypeError(`JSON.stringify returned undefined for the entry ${JSON.stringify(key)}; there is nothing to write`)
    const encoded = Buffer.from(text)
    keys.push(key)
    values.push(encoded)
    bytes += encoded.byteLength
  }
  return { deletes: [...deletes], keys, values, bytes, moves }
}

/**
 * Applies a save as one statement (saveEntriesSql): the fence, the deletes and the upserts commit
 * together or not at all, in one round trip. Throws {@link FencedWrite} when the lease moved on.
 */
async function saveInOneStatement (changes: Changes, generation: string): Promise<void> {
  const fenceRows = await onClient(async (client) => (await client.query({ ...saveStatement, values: [target.key, generation, changes.deletes, changes.keys, changes.values] })).rowCount)
  if (fenceRows !== 1) throw fenced(generation)
}

/** Applies a save that moves a key: the fence, then the deletes, then the upserts, in one transaction. */
async function saveInTransaction (changes: Changes, generation: string): Promise<void> {
  await inTransaction(async (client) => {
    const fence = await client.query(fenceEntriesSql(target.tables), [target.key, generation])
    if (fence.rowCount !== 1) throw fenced(generation)
    if (changes.deletes.length > 0) await client.query(deleteEntriesSql(target.tables), [target.key, changes.deletes])
    if (changes.keys.length > 0) await client.query(upsertEntriesSql(target.tables), [target.key, generation, changes.keys, changes.values])
  })
}

async function write (ops: readonly KeyedOp[], generation: string | undefined): Promise<WriteResult> {
  const start = performance.now()
  if (generation === undefined) return failed('write', 'a write to PostgreSQL without a fencing token', new Error('no generation: this should not happen'))
  let changes: Changes
  try {
    changes = split(ops)
  } catch (err) {
    return failed('encode', 'the encoder failed', err)
  }
  const encoded = performance.now()
  try {
    await ensureEntries()
    await (changes.moves ? saveInTransaction(changes, generation) : saveInOneStatement(changes, generation))
  } catch (err) {
    if (err instanceof FencedWrite) return failed('fenced', 'the save was fenced', err)
    return failed('write', `the save to ${target.describe} failed (rolled back, or the outcome of its COMMIT is unknown: the changes are kept, and applying them again is harmless)`, err)
  }
  return { ok: true, bytes: changes.bytes, encodeMs: encoded - start, writeMs: performance.now() - encoded }
}

function failed (stage: 'encode' | 'write' | 'fenced', message: string, err: unknown): WriteResult {
  return { ok: false, stage, message, cause: serializeError(err) }
}

/** A row value that is not exactly one JSON value (it would change the object it is spliced into). */
class BadRow extends Error {}

/**
 * Reads every entry, in order, as the bytes of one JSON object (`{"key":value,...}`), which the
 * main thread decodes as it decodes a file: the values are spliced in as stored, each first
 * checked to be one JSON value, so a row changed behind the store's back cannot add or hide keys.
 */
async function readEntries (id: number, generation: string): Promise<Answer> {
  let rows: Array<{ key: string, value: Buffer }>
  try {
    await ensureEntries()
    rows = await onClient(async (client) => (await client.query<{ key: string, value: Buffer }>(readEntriesSql(target.tables), [target.key])).rows)
  } catch (err) {
    return { response: { type: 'load-failed', id, stage: 'read', message: `could not read the entries (lease generation ${generation}) from ${entries} on ${target.describe}`, cause: serializeError(err) } }
  }
  const parts: string[] = []
  try {
    for (const { key, value } of rows) {
      let text: string
      try {
        text = utf8.decode(value)
        JSON.parse(text)
      } catch (err) {
        throw new BadRow(`the entry ${JSON.stringify(key)} does not hold one JSON value (${(err as Error).message})`)
      }
      parts.push(`${JSON.stringify(key)}:${text}`)
    }
  } catch (err) {
    return { response: { type: 'load-failed', id, stage: 'decode', message: `could not decode the entries in ${entries}`, cause: serializeError(err) } }
  }
  const snapshot = new Uint8Array(Buffer.from(`{${parts.join(',')}}`))
  // Cut here, as a large file is by the keyed writer, so the main thread parses a slice at a time.
  const split = snapshot.byteLength >= SPLIT_MIN_BYTES ? splitMembers(snapshot, RUN_BYTES) : undefined
  const transfer = split === undefined ? [snapshot.buffer] : [snapshot.buffer, split.members.buffer, split.runs.buffer]
  return { response: { type: 'fetched', id, snapshot, members: split?.members, runs: split?.runs }, transfer }
}

// A large save's changes come in parts ahead of its write; it writes them all in its one transaction.
const staged = new StagedOps()

async function handle (request: KeyedRequest): Promise<Answer> {
  switch (request.type) {
    case 'fetch': return await readEntries(request.id, request.generation)
    case 'ops':
      staged.add(request.index, request.part)
      return { response: { type: 'staged', id: request.id } }
    case 'write': {
      const parts = staged.take(request.staged ?? 0)
      const result = parts === undefined
        ? failed('write', 'some of the changes did not reach this worker, so none was written', new Error(`${request.staged ?? 0} parts were sent ahead of the write`))
        : await write(joinOps(parts, request.ops), request.generation)
      return { response: { type: 'written', id: request.id, appended: false, result } }
    }
    case 'load': throw new Error('a load of file bytes is for a file target: this should not happen')
    default: throw new Error(`unknown request ${JSON.stringify((request as { type: unknown }).type)}: this should not happen`)
  }
}

serveKeyedRequests(handle)
