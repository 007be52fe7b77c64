import { parentPort, type TransferListItem } from 'node:worker_threads'
import type { KeyedRequest, KeyedResponse } from '../src/protocol.js'
import { serializeError } from './serialize-error.js'

// The message loop both keyed writers (a file's, a PostgreSQL target's) run: requests are handled
// one at a time, in order (the main side is single-flight, but a load and a write must never
// interleave inside the worker either), and every request gets an answer: whatever throws while
// handling or answering it becomes a 'failed' answer at once.

/** What a keyed writer answers to one request, with the buffers to move rather than copy. */
export interface Answer {
  readonly response: KeyedResponse
  readonly transfer?: readonly TransferListItem[] | undefined
}

/** Serves the pinned worker's requests with `handle`, in order; throws when not run as a worker thread. */
export function serveKeyedRequests (handle: (request: KeyedRequest) => Promise<Answer>): void {
  const port = parentPort
  if (port === null) throw new Error('a keyed writer must run as a worker thread')
  const send = ({ response, transfer }: Answer): void => {
    try {
      port.postMessage(response, transfer)
    } catch (err) {
      port.postMessage({ type: 'failed', id: response.id, message: 'the answer could not be sent', cause: serializeError(err) } satisfies KeyedResponse)
    }
  }
  let queue: Promise<void> = Promise.resolve()
  port.on('message', (request: KeyedRequest) => {
    const id = (request as { id?: unknown }).id
    queue = queue.then(async () => {
      try {
        send(await handle(request))
      } catch (err) {
        send({ response: { type: 'failed', id: typeof id === 'number' ? id : -1, message: `the worker could not handle the request: ${(err as Error).message}`, cause: serializeError(err) } })
      }
    })
  })
}
