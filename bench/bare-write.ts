import { closeSync, constants, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'

// The durable replace with no library, and the messages of the raw worker that runs it off the
// main thread (bench/floor-worker.ts). Shared by both sides: the main-thread loop and the worker
// hop must do exactly the same syscalls for their ratio to measure the hop alone.

let bareSeq = 0

/** One durable replace with no library: what a single write physically costs on this disk (`sync` false: no fsyncs). */
export function bareDurableWrite (dir: string, target: string, data: Uint8Array | string, sync = true): void {
  // The thread id keeps the temp names of the main loop and the worker apart: both count from 0.
  const temp = join(dir, `.bare.${process.pid}.${threadId}.${bareSeq++}.tmp`)
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    if (typeof data === 'string') writeSync(fd, data)
    else writeSync(fd, data)
    if (sync) fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, target)
  if (!sync) return
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
}

/** What a floor worker does with each message: acknowledge it, or write it durably and then acknowledge. */
export type FloorWorkerData =
  | { readonly kind: 'drop' }
  | { readonly kind: 'write', readonly dir: string }

/** A message to a `write` floor worker: the bytes (or text) to replace `target` with, by {@link bareDurableWrite}. */
export interface FloorWrite {
  readonly target: string
  /** A Buffer arrives in the worker as a plain Uint8Array: the post copies the bytes, not the class. */
  readonly data: Uint8Array | string
  readonly sync: boolean
}
