import { type TransferListItem, Worker } from 'node:worker_threads'
import type { FloorWorkerData } from './bare-write.js'

const FLOOR_WORKER = new URL('./floor-worker.js', import.meta.url)

/** The main side of bench/floor-worker.js: one message at a time, each answered before the next is sent. */
export class FloorWorker {
  readonly #worker: Worker
  #pending: { resolve: () => void, reject: (err: unknown) => void } | undefined
  #failure: unknown

  constructor (data: FloorWorkerData) {
    this.#worker = new Worker(FLOOR_WORKER, { workerData: data })
    this.#worker.on('message', () => {
      const pending = this.#pending
      this.#pending = undefined
      pending?.resolve()
    })
    // A worker that fails must fail the scenario, not leave it awaiting a reply that never comes.
    const fail = (err: unknown): void => {
      this.#failure ??= err
      const pending = this.#pending
      this.#pending = undefined
      pending?.reject(err)
    }
    this.#worker.on('error', fail)
    this.#worker.on('exit', (code) => { fail(new Error(`the floor worker exited with code ${code}`)) })
  }

  /**
   * Posts `message` (the copy happens inside this call, so a caller can time it) and returns a
   * promise of the worker's answer, to await outside the timed part.
   */
  post (message: unknown, transfer?: readonly TransferListItem[]): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#pending !== undefined) return Promise.reject(new Error('FloorWorker.post() called before the previous message was answered'))
    const answered = new Promise<void>((resolve, reject) => { this.#pending = { resolve, reject } })
    try {
      this.#worker.postMessage(message, transfer)
    } catch (err) {
      // Nothing was sent (a value that cannot be cloned): no answer will come.
      this.#pending = undefined
      return Promise.reject(err)
    }
    return answered
  }

  /** Stops the worker. */
  async close (): Promise<void> {
    this.#failure ??= new Error('the floor worker is closed')
    await this.#worker.terminate()
  }
}
