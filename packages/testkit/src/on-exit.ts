/**
 * Servers a test forgot to stop die with the test process: each harness
 * registers how to kill what it started.
 *
 * @module
 */

const kills = new Set<() => void>();
let installed = false;

/** Run `kill` when this process exits; the returned function forgets it (the server stopped). */
export function killOnExit(kill: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const k of kills) k();
    });
  }
  kills.add(kill);
  return () => kills.delete(kill);
}
