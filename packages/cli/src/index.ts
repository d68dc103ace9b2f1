/**
 * The `shardwork` command line as a library.
 *
 * ```ts
 * import { main } from '@shardwork/cli';
 *
 * const code = await main(['node', 'shardwork', 'status', '--json', '--discovery', 'redis://127.0.0.1:6379']);
 * ```
 *
 * @module
 */

export type { CliIo, CliStream } from './cli.js';
export { main } from './cli.js';
export type { CliErrorCode, ExitCode } from './errors.js';
export {
  BackendUnavailableError,
  CliError,
  EXIT,
  NotFoundError,
  ServiceStillRunningError,
  UsageError,
} from './errors.js';
export type { MemberStatus, ServiceStatus, ShardStatus } from './status.js';
export { describeSnapshot } from './status.js';
export type { WatchEvent } from './watch.js';
export { diff as diffStatus } from './watch.js';
