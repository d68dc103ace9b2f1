/**
 * Stopping on SIGTERM and SIGINT (`handleSignals`): a Kubernetes pod or a
 * terminal's Ctrl-C asks the process to stop, and a worker or job queue that
 * opted in stops gracefully, once; the handlers are removed when it stops,
 * so a stopped worker never keeps the process from exiting on a signal.
 *
 * @module
 */

/**
 * Call `stop` on the first SIGTERM or SIGINT. Returns the function that
 * removes the handlers (idempotent).
 */
export function stopOnSignals(stop: () => void): () => void {
  let installed = true;
  const remove = (): void => {
    if (!installed) return;
    installed = false;
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
  const handler = (): void => {
    remove();
    stop();
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  return remove;
}
