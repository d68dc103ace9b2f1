/**
 * The discovery backend's Lua scripts (`./lua`), one per operation, each with
 * `common.lua` prepended so that the reaping of expired members lives in one
 * place; loaded and run with the kit's {@link LuaScripts}.
 *
 * @module
 */

import { type LoadedScript, LuaScripts } from './kit/lua.js';

/** Names of the scripts in `./lua`, one per discovery operation. */
export type ScriptName =
  | 'ensure-group'
  | 'register'
  | 'renew'
  | 'unregister'
  | 'drain'
  | 'claim'
  | 'release'
  | 'snapshot'
  | 'reap'
  | 'forget';

const scripts = new LuaScripts<ScriptName>({
  base: import.meta.url,
  directories: ['./lua/', '../src/lua/'],
  common: 'common',
  pkg: '@shardwork/discovery-redis',
});

/** The full source and SHA1 of a discovery script. */
export function script(name: ScriptName): LoadedScript {
  return scripts.get(name);
}
