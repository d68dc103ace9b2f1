/**
 * The Lua loader every shardwork Redis package uses for its scripts: read on
 * first use (nothing at import time), a shared file prepended to each, run
 * with `EVALSHA`, falling back to `EVAL` when the server does not know the
 * script yet (`NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`), and with
 * `syncReplicas` followed by a `WAIT` in the same pipeline.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, type Redis } from 'ioredis';

/** A script's full source and SHA1. */
export interface LoadedScript {
  readonly source: string;
  readonly sha: string;
}

/** Where a package keeps its `.lua` files, and which one is prepended to every script. */
export interface LuaScriptsOptions {
  /** `import.meta.url` of a module of the package, the base of `directories`. */
  readonly base: string;
  /**
   * Directories relative to `base`, tried in order: next to the module when
   * running from `src/`, and `../src/lua/` when running from `dist/` (tsc does
   * not copy `.lua` files, and the packages ship `src/`, so no copy step is needed).
   */
  readonly directories: readonly string[];
  /** A file (without `.lua`) prepended to every script, so shared helpers live in one place. */
  readonly common?: string;
  /** Package name for error messages. */
  readonly pkg: string;
}

/** The Lua scripts of a package, each read and hashed on first use. */
export class LuaScripts<N extends string> {
  readonly #options: LuaScriptsOptions;
  readonly #files = new Map<string, string>();
  readonly #compiled = new Map<N, LoadedScript>();

  constructor(options: LuaScriptsOptions) {
    this.#options = options;
  }

  #read(name: string): string {
    const cached = this.#files.get(name);
    if (cached !== undefined) return cached;
    let lastError: unknown;
    for (const directory of this.#options.directories) {
      try {
        const text = readFileSync(new URL(`${directory}${name}.lua`, this.#options.base), 'utf8');
        this.#files.set(name, text);
        return text;
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`${this.#options.pkg}: cannot read the Lua script ${name}.lua`, { cause: lastError });
  }

  /** The full source (common file first) and SHA1 of a script. */
  get(name: N): LoadedScript {
    let found = this.#compiled.get(name);
    if (found === undefined) {
      const common = this.#options.common;
      const source = common === undefined ? this.#read(name) : `${this.#read(common)}\n${this.#read(name)}`;
      found = { source, sha: createHash('sha1').update(source).digest('hex') };
      this.#compiled.set(name, found);
    }
    return found;
  }
}

/**
 * Run a loaded script with `EVALSHA`, sending its source with `EVAL` on `NOSCRIPT`.
 *
 * With `syncReplicas` > 0 the script and a `WAIT syncReplicas waitMs` go in one
 * pipeline, so that both reach the same primary (on a cluster, the node of
 * the script's keys), and the reply is `{ result, replicas }`: the script's
 * reply and how many replicas acknowledged the write.
 */
export async function runScript(
  redis: Redis | Cluster,
  loadedScript: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  syncReplicas = 0,
  waitMs = 1000,
): Promise<unknown> {
  if (syncReplicas > 0) {
    const attempt = async (source: boolean): Promise<[Error | null, unknown][]> => {
      const pipeline = redis.pipeline();
      if (source) pipeline.eval(loadedScript.source, keys.length, ...keys, ...args);
      else pipeline.evalsha(loadedScript.sha, keys.length, ...keys, ...args);
      pipeline.wait(syncReplicas, waitMs);
      return ((await pipeline.exec()) ?? []) as [Error | null, unknown][];
    };
    const send = async (): Promise<[Error | null, unknown][]> => {
      const replies = await attempt(false);
      return replies[0]?.[0]?.message.startsWith('NOSCRIPT') ? await attempt(true) : replies;
    };
    let replies = await send();
    // ioredis follows a MOVED reply in a cluster pipeline only when every command in it failed
    // alike; here WAIT (no key) succeeds on the wrong node, so the pipeline is not redirected and
    // the stale slot map is never corrected. Refresh it and send once more.
    if (redis instanceof Cluster && /^MOVED /.test(replies[0]?.[0]?.message ?? '')) {
      await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()));
      replies = await send();
    }
    const [scriptReply, waitReply] = replies;
    if (scriptReply === undefined || waitReply === undefined) throw new Error('pipeline returned no replies');
    if (scriptReply[0] !== null) throw scriptReply[0];
    if (waitReply[0] !== null) throw waitReply[0];
    return { result: scriptReply[1], replicas: Number(waitReply[1]) };
  }
  try {
    return await redis.evalsha(loadedScript.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return await redis.eval(loadedScript.source, keys.length, ...keys, ...args);
  }
}
