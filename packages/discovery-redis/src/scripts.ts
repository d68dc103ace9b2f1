/**
 * The Lua scripts of `./lua`, loaded on first use (nothing is read at import
 * time) and run with `EVALSHA`, falling back to `EVAL` when the server does
 * not know the script yet (`NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`).
 *
 * Every script is `common.lua` followed by its own file, so the reaping of
 * expired members lives in one place.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Names of the scripts in `./lua`, one per discovery operation. */
export type ScriptName =
  | 'ensure-group'
  | 'register'
  | 'renew'
  | 'unregister'
  | 'claim'
  | 'release'
  | 'snapshot'
  | 'reap';

/** A script's full source and SHA1. */
export interface LoadedScript {
  readonly source: string;
  readonly sha: string;
}

const loaded = new Map<ScriptName | 'common', string>();
const compiled = new Map<ScriptName, LoadedScript>();

/**
 * Where the `.lua` files are: next to this module when running from `src/`,
 * and `../src/lua` when running from `dist/` (tsc does not copy them, and the
 * package ships `src/`, so no copy step is needed).
 */
const directories = ['./lua/', '../src/lua/'] as const;

function readLua(name: ScriptName | 'common'): string {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  let lastError: unknown;
  for (const directory of directories) {
    try {
      const text = readFileSync(new URL(`${directory}${name}.lua`, import.meta.url), 'utf8');
      loaded.set(name, text);
      return text;
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`@shardwork/discovery-redis: cannot read the Lua script ${name}.lua`, { cause: lastError });
}

/** The full source and SHA1 of a script. */
export function script(name: ScriptName): LoadedScript {
  let found = compiled.get(name);
  if (found === undefined) {
    const source = `${readLua('common')}\n${readLua(name)}`;
    found = { source, sha: createHash('sha1').update(source).digest('hex') };
    compiled.set(name, found);
  }
  return found;
}

/** Run a loaded script with `EVALSHA`, sending its source with `EVAL` on `NOSCRIPT`. */
export async function runScript(
  redis: Redis,
  loadedScript: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(loadedScript.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return await redis.eval(loadedScript.source, keys.length, ...keys, ...args);
  }
}
