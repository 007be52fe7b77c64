// Internals reachable across modules (and by tests) without being public API.

/** A KeyedStore's PinnedWorker: tests terminate it to prove the mirror is rebuilt. */
export const kPinnedWorker: unique symbol = Symbol('offload-store.pinnedWorker')
