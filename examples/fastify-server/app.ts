import diagnosticsChannel from 'node:diagnostics_channel'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { channels, KeyedStore, type LeaseLostMessage, type Logger, postgres, ShutdownRegistry, Store, StoreError } from '../../src/index.js'
import { LoopMonitor } from './loop-metrics.js'

/** One paired device, as a client sends it. */
export interface PairingInput {
  readonly name: string
  readonly publicKey: string
}

/** One paired device, as it is stored: what the client sent, plus when. */
export interface Pairing extends PairingInput {
  readonly pairedAt: string
}

/** The server's settings: a small object, saved whole by a {@link Store}. */
export interface Settings {
  readonly pairingEnabled: boolean
  readonly hubName: string
}

const defaultSettings: Settings = { pairingEnabled: true, hubName: 'hub' }

/** What both a KeyedStore and a plain Map offer, so `SAVES=off` swaps one for the other. */
interface PairingTable {
  get: (id: string) => Pairing | undefined
  set: (id: string, pairing: Pairing) => unknown
  delete: (id: string) => boolean
  entries: () => Iterable<[string, Pairing]>
  readonly size: number
}

export interface AppOptions {
  /** Where `pairings.json` and `settings.json` live. */
  readonly dataDir: string
  /** False keeps everything in memory (for comparing the loop delay without saves). @defaultValue true */
  readonly saves?: boolean
  /** The debounce of the writes that changes schedule. @defaultValue 1000 */
  readonly saveDelayMs?: number
  /** Append each save's changes to `pairings.json.journal` instead of rewriting the file. @defaultValue false */
  readonly journal?: boolean
  /** Fastify's log level; logs go to stderr, as the stores' do. @defaultValue 'warn' */
  readonly logLevel?: string
  /**
   * Keep the state in PostgreSQL instead of `dataDir`, so several instances share it: one (the
   * leader) holds the stores' leases and serves, the others wait for the leases as standbys.
   */
  readonly postgres?: PostgresOptions
}

/** Where the shared state lives when several instances run. */
interface PostgresOptions {
  readonly connectionString: string
  /** How long a dead leader keeps its leases before a standby takes over. @defaultValue 10000 */
  readonly leaseMs?: number
}

/**
 * `leader`: holds the stores and serves every route. `standby`: waits for the leases, answers 503
 * (but `/health` and `/metrics/loop`). `fenced`: another instance took the leases over; its state
 * in memory is stale, so it answers 503 too until it is restarted (and comes back as a standby).
 */
type Role = 'leader' | 'standby' | 'fenced'

export interface App {
  readonly app: FastifyInstance
  /** Every store's flush: call `flush()` once the server no longer takes requests. */
  readonly shutdown: ShutdownRegistry
  readonly monitor: LoopMonitor
  /** This instance's role now; always `leader` with files. */
  readonly role: () => Role
  /** Resolves once this instance is the leader (at once with files); rejects if taking over fails. */
  readonly leader: Promise<void>
  /** Closes the stores, releasing their leases (call after `shutdown.flush()`); idempotent. */
  readonly closeStores: () => Promise<void>
}

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } }
} as const

const pairingInput = {
  type: 'object',
  required: ['name', 'publicKey'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    publicKey: { type: 'string', minLength: 1, maxLength: 1000 }
  }
} as const

const pairingOut = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' }, publicKey: { type: 'string' }, pairedAt: { type: 'string' } }
} as const

const settingsSchema = {
  type: 'object',
  required: ['pairingEnabled', 'hubName'],
  additionalProperties: false,
  properties: { pairingEnabled: { type: 'boolean' }, hubName: { type: 'string', minLength: 1, maxLength: 100 } }
} as const

/** Retries `load` while another instance holds the lease: a standby waits as long as the leader lives. */
async function untilLeased<R> (load: () => Promise<R>, logger: Logger): Promise<R> {
  for (;;) {
    try {
      return await load()
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'ERR_STORE_LOCKED') throw err
      logger.debug({ err }, 'standby: another instance still holds the lease')
    }
  }
}

/**
 * Builds the server: a device pairing list in a {@link KeyedStore} (each change sends the pinned
 * worker only that entry) and the settings in a {@link Store}, both registered with one
 * {@link ShutdownRegistry}. With files, the stores are loaded before this resolves. With
 * `postgres`, it resolves at once as a standby; `leader` resolves once both leases are taken and
 * the stores loaded.
 */
export async function buildApp (options: AppOptions): Promise<App> {
  const { dataDir, saves = true, saveDelayMs = 1000, journal = false, logLevel = 'warn' } = options
  const app = Fastify({ logger: { level: logLevel, stream: process.stderr } })
  const shutdown = new ShutdownRegistry()
  const logger: Logger = app.log

  let pairings: PairingTable
  let settings: Settings = defaultSettings
  let saveSettings = async (): Promise<void> => {}
  // What a change awaits before its answer: nothing with files (a 2xx means accepted), the COMMIT
  // on PostgreSQL, where another instance may take over at any moment and must find the change.
  let persist: (() => Promise<void>) | undefined
  let role: Role = 'leader'
  let leader = Promise.resolve()
  let closeStores = async (): Promise<void> => {}
  if (saves && options.postgres !== undefined) {
    const { connectionString, leaseMs = 10_000 } = options.postgres
    // lockTimeout only bounds one wait: untilLeased waits again, for as long as the leader lives.
    const target = postgres({ connectionString, leaseMs, lockTimeout: 60_000 })
    // The same names on every instance: they are the rows' keys, and the leases'.
    const pairingStore = new KeyedStore<string, Pairing>({
      path: join(dataDir, 'pairings.json'),
      name: 'pairings',
      shutdownRegister: shutdown.register,
      delayMs: saveDelayMs,
      logger,
      target
    })
    const settingsStore = new Store<Settings>({ path: join(dataDir, 'settings.json'), name: 'settings', shutdownRegister: shutdown.register, logger, target })
    pairings = pairingStore
    persist = async () => { await pairingStore.saveNow() }
    saveSettings = async () => { await settingsStore.save(settings) }
    role = 'standby'
    // Every instance takes the leases in the same order, so two never hold one each.
    leader = (async () => {
      await untilLeased(async () => await pairingStore.load(), logger)
      settings = (await untilLeased(async () => await settingsStore.load(), logger)) ?? defaultSettings
      role = 'leader'
    })()
    // A renewal that finds a lease taken over says so at once: stop serving stale memory then, not
    // at the next write.
    const onLeaseLost = (message: unknown): void => {
      const { store } = message as LeaseLostMessage
      if (store === 'pairings' || store === 'settings') role = 'fenced'
    }
    diagnosticsChannel.subscribe(channels.leaseLost.name, onLeaseLost)
    let closing: Promise<unknown> | undefined
    closeStores = async () => {
      diagnosticsChannel.unsubscribe(channels.leaseLost.name, onLeaseLost)
      closing ??= Promise.allSettled([pairingStore.close(), settingsStore.close()])
      await closing
    }
  } else if (saves) {
    const pairingStore = new KeyedStore<string, Pairing>({
      path: join(dataDir, 'pairings.json'),
      name: 'pairings',
      shutdownRegister: shutdown.register,
      delayMs: saveDelayMs,
      journal,
      logger
    })
    const settingsStore = new Store<Settings>({
      path: join(dataDir, 'settings.json'),
      name: 'settings',
      shutdownRegister: shutdown.register,
      logger
    })
    await pairingStore.load()
    settings = (await settingsStore.load()) ?? defaultSettings
    pairings = pairingStore
    // The dataFn runs at write time: many changes in the window make one write of the latest.
    saveSettings = async () => { settingsStore.delaySave(() => settings, saveDelayMs) }
  } else {
    pairings = new Map<string, Pairing>()
  }

  /** Answers a change the store refused: 503 with its code; a fenced instance stops serving. */
  const refused = async (reply: FastifyReply, err: unknown): Promise<FastifyReply> => {
    if (!(err instanceof StoreError)) throw err
    if (err.code === 'ERR_STORE_FENCED') role = 'fenced'
    reply.log.error({ err }, 'the change was not acknowledged')
    return await reply.code(503).send({ error: err.message, code: err.code })
  }

  const monitor = new LoopMonitor()
  monitor.start()
  app.addHook('onClose', async () => { monitor.stop() })

  // A standby or fenced instance serves nothing from its memory: it is empty, or stale.
  app.addHook('onRequest', async (request, reply) => {
    if (role === 'leader' || request.url === '/health' || request.url.startsWith('/metrics/')) return
    const answer = role === 'standby'
      ? { error: 'standby: another instance holds the leases', role }
      : { error: 'fenced: another instance took the leases over', role, code: 'ERR_STORE_FENCED' }
    await reply.code(503).header('retry-after', '1').send(answer)
    return reply
  })

  app.get('/health', async (_request, reply) => await reply.code(role === 'leader' ? 200 : 503).send({ role }))

  app.get('/pairings', {
    schema: {
      response: {
        200: { type: 'object', properties: { size: { type: 'integer' }, pairings: { type: 'array', items: pairingOut } } }
      }
    }
  }, async () => {
    const list = []
    for (const [id, pairing] of pairings.entries()) list.push({ id, ...pairing })
    return { size: pairings.size, pairings: list }
  })

  app.get<{ Params: { id: string } }>('/pairings/:id', {
    schema: { params: idParams, response: { 200: pairingOut } }
  }, async (request, reply) => {
    const pairing = pairings.get(request.params.id)
    if (pairing === undefined) return await reply.code(404).send({ error: 'no such pairing' })
    return { id: request.params.id, ...pairing }
  })

  app.put<{ Params: { id: string }, Body: PairingInput }>('/pairings/:id', {
    schema: { params: idParams, body: pairingInput, response: { 200: pairingOut } }
  }, async (request, reply) => {
    if (!settings.pairingEnabled) return await reply.code(403).send({ error: 'pairing is disabled' })
    const { id } = request.params
    const pairing: Pairing = { name: request.body.name, publicKey: request.body.publicKey, pairedAt: new Date().toISOString() }
    // With files: in memory now, on disk after the debounce or at shutdown, so a 2xx means
    // "accepted", not "durable". On PostgreSQL a 2xx means committed.
    pairings.set(id, pairing)
    if (persist !== undefined) {
      try {
        await persist()
      } catch (err) {
        return await refused(reply, err)
      }
    }
    return { id, ...pairing }
  })

  app.delete<{ Params: { id: string } }>('/pairings/:id', {
    schema: { params: idParams }
  }, async (request, reply) => {
    if (!pairings.delete(request.params.id)) return await reply.code(404).send({ error: 'no such pairing' })
    if (persist !== undefined) {
      try {
        await persist()
      } catch (err) {
        return await refused(reply, err)
      }
    }
    return await reply.code(204).send()
  })

  app.get('/settings', { schema: { response: { 200: settingsSchema } } }, async () => settings)

  app.put<{ Body: Settings }>('/settings', {
    schema: { body: settingsSchema, response: { 200: settingsSchema } }
  }, async (request, reply) => {
    settings = { pairingEnabled: request.body.pairingEnabled, hubName: request.body.hubName }
    try {
      await saveSettings()
    } catch (err) {
      return await refused(reply, err)
    }
    return settings
  })

  app.get('/metrics/loop', async () => monitor.report())

  app.post('/metrics/loop/reset', async (_request, reply) => {
    monitor.reset()
    return await reply.code(204).send()
  })

  return { app, shutdown, monitor, role: () => role, leader, closeStores }
}
