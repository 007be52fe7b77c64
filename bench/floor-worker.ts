import { parentPort, workerData } from 'node:worker_threads'
import { bareDurableWrite, type FloorWorkerData, type FloorWrite } from './bare-write.js'

// A raw worker_threads worker (no Piscina, no library code) for the floors of the design: it
// receives a message and answers `0`, after writing it durably in `write` mode. The main side
// times what it must pay for such a hop; nothing here is measured.

const port = parentPort ?? (() => { throw new Error('bench/floor-worker.js must run as a worker thread') })()
const data = workerData as FloorWorkerData

switch (data.kind) {
  case 'drop':
    port.on('message', () => { port.postMessage(0) })
    break
  case 'write': {
    const { dir } = data
    port.on('message', (message: FloorWrite) => {
      bareDurableWrite(dir, message.target, message.data, message.sync)
      port.postMessage(0)
    })
    break
  }
  default:
    throw new Error(`unknown floor worker kind ${JSON.stringify((data as { kind: unknown }).kind)}: this should not happen`)
}
