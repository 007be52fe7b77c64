// Internals reachable across modules (and by tests) without being public API: they are marked
// @internal and stripped from the published .d.ts.

/** @internal A KeyedStore's PinnedWorker: tests terminate it to prove the mirror is rebuilt. */
export const kPinnedWorker: unique symbol = Symbol('offload-store.pinnedWorker')

/** @internal WriterPool's hand-off of one write task, used by Store. */
export const kDispatch: unique symbol = Symbol('offload-store.dispatch')

/** @internal WriterPool's wait for the threads of terminated writes to a target to exit, used by Store's close(). */
export const kTargetSettled: unique symbol = Symbol('offload-store.targetSettled')
