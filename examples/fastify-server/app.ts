import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { KeyedStore, type Logger, ShutdownRegistry, Store } from '../../src/index.js'
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
}

export interface App {
  readonly app: FastifyInstance
  /** Every store's flush: call `flush()` once the server no longer takes requests. */
  readonly shutdown: ShutdownRegistry
  readonly monitor: LoopMonitor
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

/**
 * Builds the server: a device pairing list in a {@link KeyedStore} (each change sends the pinned
 * worker only that entry) and the settings in a {@link Store}, both registered with one
 * {@link ShutdownRegistry}. The stores are loaded before this resolves.
 */
export async function buildApp (options: AppOptions): Promise<App> {
  const { dataDir, saves = true, saveDelayMs = 1000, journal = false, logLevel = 'warn' } = options
  const app = Fastify({ logger: { level: logLevel, stream: process.stderr } })
  const shutdown = new ShutdownRegistry()
  const logger: Logger = app.log

  let pairings: PairingTable
  let settings: Settings = defaultSettings
  let saveSettings: () => void = () => {}
  if (saves) {
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
    saveSettings = () => { settingsStore.delaySave(() => settings, saveDelayMs) }
  } else {
    pairings = new Map<string, Pairing>()
  }

  const monitor = new LoopMonitor()
  monitor.start()
  app.addHook('onClose', async () => { monitor.stop() })

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
    // In memory now, on disk after the debounce or at shutdown: a 2xx means "accepted", not "durable".
    pairings.set(id, pairing)
    return { id, ...pairing }
  })

  app.delete<{ Params: { id: string } }>('/pairings/:id', {
    schema: { params: idParams }
  }, async (request, reply) => {
    if (!pairings.delete(request.params.id)) return await reply.code(404).send({ error: 'no such pairing' })
    return await reply.code(204).send()
  })

  app.get('/settings', { schema: { response: { 200: settingsSchema } } }, async () => settings)

  app.put<{ Body: Settings }>('/settings', {
    schema: { body: settingsSchema, response: { 200: settingsSchema } }
  }, async (request) => {
    settings = { pairingEnabled: request.body.pairingEnabled, hubName: request.body.hubName }
    saveSettings()
    return settings
  })

  app.get('/metrics/loop', async () => monitor.report())

  app.post('/metrics/loop/reset', async (_request, reply) => {
    monitor.reset()
    return await reply.code(204).send()
  })

  return { app, shutdown, monitor }
}
