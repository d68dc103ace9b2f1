/**
 * The `shardwork` command line: `main(argv, io)` parses, runs one command and
 * resolves to the exit code. It never calls `process.exit`, so tests can run
 * it in-process; `bin.ts` is the thin wrapper for the real process.
 *
 * @module
 */

import { errorMessage } from '@shardwork/core';
import { Command, CommanderError, Option } from 'commander';
import { type CliIo, Context, type GlobalOptions, parseIntOption, stopSignal, withJobs } from './context.js';
import { startDashboardCommand } from './dashboard.js';
import { dbMigrate } from './db.js';
import { CliError, EXIT, type ExitCode, UsageError } from './errors.js';
import { purgeJobs, renderCancel, renderJob, showJob, waitJob } from './follow.js';
import { parseArgs, parseState, pauseHandler, renderJobs, renderStats, runDeadAction } from './jobs.js';
import { forgetService } from './services.js';
import { collectStatus, renderService } from './status.js';
import { runWatch } from './watch.js';

export type { CliIo, CliStream } from './context.js';

const EPILOG = `
Environment:
  SHARDWORK_DISCOVERY   default for --discovery (e.g. redis://127.0.0.1:6379, etcd://127.0.0.1:2379)
  SHARDWORK_JOBS        default for --jobs (e.g. redis://127.0.0.1:6379?prefix=app:)

Exit codes:
  0  ok
  1  usage error or bad input (unknown option, malformed URL, bad JSON,
     an in-process memory:// store, which another process always sees empty,
     services forget on a backend that cannot forget)
  2  backend unreachable, no answer within --timeout, or a refusal
     (wrong password, missing ACL permission, TLS)
  3  status: a service is degraded (runs with shards nobody owns)
  4  not found (job id, named service, a handler to pause that nobody
     registered, a service with no records to forget)
  5  status <service>: a named service is stopped (no member runs it)
  6  services forget: refused, the service still has live members
  7  jobs wait: the job went dead or was cancelled
  8  jobs wait: the job had not finished within --within (it goes on)`;

/** Build the commander program; `setExit` records the exit code of the command that ran. */
function program(io: CliIo, setExit: (code: ExitCode) => void): Command {
  const root = new Command('shardwork');
  const ctx = (cmd: Command): Context => new Context(io, cmd.optsWithGlobals<GlobalOptions>());

  root
    .description('Inspect and operate shardwork services and job queues.')
    .addOption(new Option('--discovery <url>', 'discovery backend URL (env SHARDWORK_DISCOVERY)'))
    .addOption(new Option('--jobs <url>', 'job store URL (env SHARDWORK_JOBS)'))
    .option('--json', 'print JSON instead of tables')
    .option('--timeout <ms>', 'deadline of each backend call, ms', '5000')
    .option('--no-color', 'never colour the output')
    .addHelpText('after', EPILOG)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });

  root
    .command('status')
    .description('Members, shard map and unowned shards of each service (all services when none is named).')
    .argument('[service...]', 'services to show')
    .addHelpText('after', EPILOG)
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      const c = ctx(cmd);
      const client = c.discovery();
      try {
        const services = await collectStatus(client, names, { strict: names.length > 0 });
        const degraded = services.some((s) => s.degraded);
        if (c.json) c.printJson({ degraded, services });
        else
          c.out(
            services.length === 0
              ? 'no services'
              : services.map((s) => renderService(s, c.color, c.width)).join('\n\n'),
          );
        // A stopped service is no alarm in the overview (a retired service must not hold every
        // check at 3), but asked for by name it is not running, and 0 would say it is.
        const stopped = names.length > 0 && services.some((s) => s.health === 'stopped');
        setExit(degraded ? EXIT.degraded : stopped ? EXIT.stopped : EXIT.ok);
      } finally {
        await client.close();
      }
    });

  root
    .command('watch')
    .description('Live view of services; prints each shard movement ("shard 3: a -> b (token 17)"). Ctrl-C to stop.')
    .argument('[service...]', 'services to watch (all when none is named)')
    .option('--interval <ms>', 'poll interval, ms', parseIntOption('--interval', 50), 1000)
    .addHelpText('after', EPILOG)
    .action(async (names: string[], o: { interval: number }, cmd: Command) => {
      const c = ctx(cmd);
      const client = c.discovery();
      const stop = stopSignal(io);
      try {
        await runWatch(client, {
          names,
          intervalMs: o.interval,
          json: c.json,
          tty: io.stdout.isTTY === true,
          color: c.color,
          width: c.width,
          write: (s) => io.stdout.write(s),
          warn: (s) => io.stderr.write(`${s}\n`),
          signal: stop.signal,
        });
      } finally {
        stop.dispose();
        await client.close();
      }
    });

  const serviceCommands = root
    .command('services')
    .description('Operate on services in the discovery backend (--discovery <url>).')
    .addHelpText('after', EPILOG);

  serviceCommands
    .command('forget')
    .description(
      'Remove the records of a stopped service (no live member): its shard count, lease TTL and counters. ' +
        'Refused (exit 6) while a member lives; a replica started later creates the service afresh.',
    )
    .argument('<service>', 'service name')
    .addHelpText('after', EPILOG)
    .action(async (service: string, _o: unknown, cmd: Command) => {
      const c = ctx(cmd);
      const client = c.discovery();
      try {
        await forgetService(client, service);
        if (c.json) c.printJson({ service, forgotten: true });
        else c.out(`forgot service ${service}: its records are removed from ${client.target}`);
      } finally {
        await client.close();
      }
    });

  const jobs = root
    .command('jobs')
    .description('Job queue administration (--jobs <url>).')
    .addHelpText('after', EPILOG);

  jobs
    .command('stats')
    .description('Job counts by state per queue and per handler, and which handlers are paused.')
    .action(async (_o: unknown, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        const stats = await client.call((q) => q.stats());
        if (c.json) c.printJson(stats);
        else c.out(renderStats(stats, c.width));
      });
    });

  jobs
    .command('list')
    .description('A page of the jobs in one state, oldest first.')
    .argument('<state>', 'scheduled | ready | running | retrying | completed | dead | cancelled')
    .option('--queue <queue>', 'only this queue')
    .option('--handler <handler>', 'only this handler')
    .option('--limit <n>', 'page size (1-10000)', parseIntOption('--limit', 1), 50)
    .option('--offset <n>', 'jobs to skip', parseIntOption('--offset', 0), 0)
    .action(
      async (
        stateArg: string,
        o: { queue?: string; handler?: string; limit: number; offset: number },
        cmd: Command,
      ) => {
        const c = ctx(cmd);
        const state = parseState(stateArg);
        await withJobs(c, async (client) => {
          const page = await client.call((q) =>
            q.list(state, {
              limit: o.limit,
              offset: o.offset,
              ...(o.queue === undefined ? {} : { queue: o.queue }),
              ...(o.handler === undefined ? {} : { handler: o.handler }),
            }),
          );
          if (c.json) c.printJson(page);
          else c.out(renderJobs(page, { state, offset: o.offset, queue: o.queue, handler: o.handler, width: c.width }));
        });
      },
    );

  for (const action of ['retry', 'delete'] as const) {
    jobs
      .command(action)
      .description(
        action === 'retry' ? 'Move a dead job (or all) back to ready.' : 'Delete a dead job (or all dead jobs).',
      )
      .argument('[id]', 'job id')
      .option('--all', 'every dead job')
      .action(async (id: string | undefined, o: { all?: boolean }, cmd: Command) => {
        const c = ctx(cmd);
        await withJobs(c, async (client) => {
          const n = await runDeadAction(client, {
            action,
            id,
            all: o.all === true,
            progressStream: io.stderr.isTTY === true ? (io.stderr as NodeJS.WritableStream) : undefined,
            timeoutMs: c.timeoutMs,
          });
          const verb = action === 'retry' ? 'retried' : 'deleted';
          if (c.json) c.printJson({ [verb]: n });
          else c.out(id === undefined ? `${verb} ${n} dead job${n === 1 ? '' : 's'}` : `${verb} dead job ${id}`);
        });
      });
  }

  jobs
    .command('show')
    .description('One job by id: its state, attempts, progress, result or last error.')
    .argument('<id>', 'job id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        const job = await showJob(client, id);
        if (c.json) c.printJson(job);
        else c.out(renderJob(job, c.width));
      });
    });

  jobs
    .command('wait')
    .description(
      'Wait until a job finishes and print its result (JSON); exit 7 if it went dead or was cancelled, 8 if it had not finished within --within.',
    )
    .argument('<id>', 'job id')
    .option('--within <ms>', 'give up after this long (the job goes on)', parseIntOption('--within', 1), 60_000)
    .action(async (id: string, o: { within: number }, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        const result = await waitJob(client, id, o.within, c.timeoutMs);
        c.out(JSON.stringify(result ?? null));
      });
    });

  jobs
    .command('cancel')
    .description(
      'Cancel a job: a waiting one is removed, a running one is aborted wherever it runs and never completes.',
    )
    .argument('<id>', 'job id')
    .option('--reason <text>', 'why (kept with the job)')
    .action(async (id: string, o: { reason?: string }, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        const result = await client.call((q) => q.cancel(id, o.reason === undefined ? {} : { reason: o.reason }));
        if (c.json) c.printJson(result);
        else c.out(renderCancel(result));
      });
    });

  jobs
    .command('promote')
    .description('Run a scheduled or retrying job now.')
    .argument('<id>', 'job id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        await client.call((q) => q.promote(id));
        if (c.json) c.printJson({ id, promoted: true });
        else c.out(`promoted job ${id}`);
      });
    });

  jobs
    .command('purge')
    .description('Cancel every ready, scheduled or retrying job (of a queue or handler); needs --yes.')
    .argument('<state>', 'ready | scheduled | retrying')
    .option('--queue <queue>', 'only this queue')
    .option('--handler <handler>', 'only this handler')
    .option('--yes', 'do it (without it, only says how many jobs it would cancel, exit 1)')
    .action(async (state: string, o: { queue?: string; handler?: string; yes?: boolean }, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        const n = await purgeJobs(client, { state, yes: o.yes === true, queue: o.queue, handler: o.handler });
        if (c.json) c.printJson({ state, purged: n });
        else c.out(`purged ${n} ${state} job${n === 1 ? '' : 's'} (cancelled)`);
      });
    });

  for (const action of ['pause', 'unpause'] as const) {
    const command = jobs
      .command(action)
      .description(
        action === 'pause' ? 'Stop starting jobs of a handler (in every process).' : 'Resume a paused handler.',
      )
      .argument('<handler>', 'handler name');
    if (action === 'pause') {
      command.option(
        '--force',
        'pause even a handler that no live consumer registers and no job ever used (e.g. before its first consumer starts); without it that is refused with exit 4',
      );
    }
    command.action(async (handler: string, o: { force?: boolean }, cmd: Command) => {
      const c = ctx(cmd);
      await withJobs(c, async (client) => {
        if (action === 'pause') await pauseHandler(client, handler, o.force === true);
        else await client.call((q) => q.unpause(handler));
        if (c.json) c.printJson({ handler, paused: action === 'pause' });
        else c.out(`${action === 'pause' ? 'paused' : 'unpaused'} ${handler}`);
      });
    });
  }

  jobs
    .command('enqueue')
    .description('Enqueue one job.')
    .argument('<handler>', 'handler name')
    .argument('[argsJson]', 'job arguments as JSON', undefined)
    .option('--queue <queue>', 'queue name')
    .option('--key <key>', 'job key (deduplication / per-key order)')
    .option('--in <ms>', 'run after this many ms', parseIntOption('--in', 0))
    .option('--at <date>', 'run at this ISO date')
    .action(
      async (
        handler: string,
        argsJson: string | undefined,
        o: { queue?: string; key?: string; in?: number; at?: string },
        cmd: Command,
      ) => {
        const c = ctx(cmd);
        const args = parseArgs(argsJson);
        if (o.in !== undefined && o.at !== undefined) throw new UsageError('Give either --in or --at, not both');
        let at: Date | undefined;
        if (o.at !== undefined) {
          at = new Date(o.at);
          if (Number.isNaN(at.getTime())) throw new UsageError(`--at is not a date: "${o.at}" (use ISO 8601)`);
        }
        const job = {
          handler,
          args: args as never,
          ...(o.queue === undefined ? {} : { queue: o.queue }),
          ...(o.key === undefined ? {} : { key: o.key }),
        };
        await withJobs(c, async (client) => {
          const result = await client.call((q) =>
            at !== undefined ? q.performAt(job, at) : o.in !== undefined ? q.performIn(job, o.in) : q.perform(job),
          );
          if (c.json) c.printJson(result);
          else c.out(`${result.duplicate ? 'duplicate of' : 'enqueued'} job ${result.id}`);
        });
      },
    );

  const db = root.command('db').description('The tables of a postgres:// job store.');
  db.command('migrate')
    .description('Create or upgrade the job tables of --jobs postgres://… (its ?schema=, else shardwork).')
    .option('--sql', 'print the migration as one SQL script instead of running it (connects to nothing)')
    .option('--from <version>', 'with --sql: the version the database is at', parseIntOption('--from', 0))
    .addHelpText('after', EPILOG)
    .action(async (o: { sql?: boolean; from?: number }, cmd: Command) => {
      await dbMigrate(ctx(cmd), o);
    });

  root
    .command('dashboard')
    .description('Serve the web dashboard until Ctrl-C.')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', parseIntOption('--port', 0), 8080)
    .option('--token <token>', 'require this bearer token')
    .option('--user <user>', 'basic auth user (with --password)')
    .option('--password <password>', 'basic auth password (with --user)')
    .option('--read-only', 'hide the actions (retry, delete, pause, forget)')
    .addHelpText('after', EPILOG)
    .action(
      async (
        o: { host: string; port: number; token?: string; user?: string; password?: string; readOnly?: boolean },
        cmd: Command,
      ) => {
        const c = ctx(cmd);
        const stop = stopSignal(io);
        try {
          await startDashboardCommand({
            discovery: c.opts.discovery ?? io.env.SHARDWORK_DISCOVERY,
            jobs: c.opts.jobs ?? io.env.SHARDWORK_JOBS,
            host: o.host,
            port: o.port,
            token: o.token,
            user: o.user,
            password: o.password,
            readOnly: o.readOnly === true,
            timeoutMs: c.timeoutMs,
            discoveryFromEnv: c.opts.discovery === undefined,
            jobsFromEnv: c.opts.jobs === undefined,
            json: c.json,
            write: (s) => io.stdout.write(s),
            warn: (s) => io.stderr.write(s),
            signal: stop.signal,
          });
        } finally {
          stop.dispose();
        }
      },
    );

  // Subcommands report their own errors through the same output and override.
  for (const cmd of [root, ...root.commands, ...serviceCommands.commands, ...jobs.commands, ...db.commands]) {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  }
  return root;
}

/**
 * Run the CLI once.
 * @param argv - `process.argv` shape: the first two entries (node, script) are skipped.
 * @param io - streams and environment; the process's by default.
 * @returns the exit code (see `shardwork --help`).
 */
export async function main(argv: readonly string[], io?: Partial<CliIo>): Promise<ExitCode> {
  const resolved: CliIo = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    env: io?.env ?? process.env,
    ...(io?.signal === undefined ? {} : { signal: io.signal }),
  };
  let code: ExitCode = EXIT.ok;
  const cli = program(resolved, (c) => {
    code = c;
  });
  try {
    await cli.parseAsync([...argv]);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with exit code 0; commander printed everything else already.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      resolved.stderr.write(`shardwork: ${error.message}\n`);
      return error.exitCode;
    }
    resolved.stderr.write(`shardwork: ${errorMessage(error)}\n`);
    return EXIT.usage;
  }
}
