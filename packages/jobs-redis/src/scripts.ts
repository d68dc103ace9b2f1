/**
 * The Lua scripts of `./lua`, one per state change, each prepended with
 * `common.lua`; loaded on first use with core's loader from the discovery
 * package, and run with `EVALSHA` (falling back to `EVAL` on `NOSCRIPT`).
 *
 * @module
 */

import { type LoadedScript, LuaScripts } from '@shardwork/discovery-redis/kit';

/** Names of the scripts in `./lua`. */
export type ScriptName =
  | 'enqueue'
  | 'takeover'
  | 'fetch'
  | 'complete'
  | 'retry'
  | 'dead'
  | 'requeue'
  | 'reclaim'
  | 'cron'
  | 'retry-dead'
  | 'delete-dead'
  | 'job'
  | 'cancel'
  | 'wait'
  | 'progress'
  | 'modify';

const scripts = new LuaScripts<ScriptName>({
  base: import.meta.url,
  directories: ['./lua/', '../src/lua/'],
  common: 'common',
  pkg: '@shardwork/jobs-redis',
});

/** The full source and SHA1 of a script. */
export function script(name: ScriptName): LoadedScript {
  return scripts.get(name);
}
