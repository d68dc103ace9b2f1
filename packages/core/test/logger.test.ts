/**
 * The `logger` option (issue 21): every message the worker prints goes to the
 * application's logger, in pino's shape (fields first), and nothing to the
 * console; the default console logger keeps today's lines and has levels.
 */

import { consoleLogger, InvalidOptionsError, type LogFields, type Logger, Worker } from '@shardwork/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Cluster, started, useFakeTime } from './harness.js';

beforeEach(() => useFakeTime());
afterEach(() => {
  vi.useRealTimers();
});

function recording(): { logger: Logger; lines: { level: string; fields: LogFields; message: string }[] } {
  const lines: { level: string; fields: LogFields; message: string }[] = [];
  const at =
    (level: string) =>
    (fields: LogFields, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('the logger option', () => {
  it('gets a failing stage with its fields, and the console gets nothing', async () => {
    const spies = (['debug', 'info', 'warn', 'error', 'log'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => undefined),
    );
    try {
      const { logger, lines } = recording();
      const cluster = new Cluster(1);
      const { worker } = cluster.add({
        logger,
        retry: { maximumAttempts: 1 },
        handler: () => {
          throw new Error('boom');
        },
      });
      await started(worker);
      await vi.advanceTimersByTimeAsync(10);
      const stage = lines.find((l) => l.message === 'shard 0 do failed: boom');
      expect(stage).toMatchObject({ level: 'warn', fields: { shard: 0, stage: 'do', attempt: 1 } });
      expect(stage?.fields.service).toBe(worker.status().service);
      expect(typeof stage?.fields.token).toBe('number');
      expect((stage?.fields.error as Error | undefined)?.message).toBe('boom');
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
      await cluster.stopAll();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('gets a listener that threw where no error listener hears it', async () => {
    const { logger, lines } = recording();
    const worker = new Worker({ service: 'logged', shards: 1, handler: () => undefined, logger });
    worker.on('state', () => {
      throw new Error('listener bug');
    });
    await worker.start();
    await worker.stop();
    expect(lines.map((l) => `${l.level} ${l.message}`)).toContain('warn a "state" listener threw: listener bug');
  });

  it('refuses something that is not a logger, naming the option', () => {
    expect(
      () => new Worker({ service: 's', shards: 1, handler: () => undefined, logger: console.warn as never }),
    ).toThrow(expect.objectContaining({ option: 'logger' }));
    expect(() => new Worker({ service: 's', shards: 1, handler: () => undefined, logger: {} as never })).toThrow(
      InvalidOptionsError,
    );
  });

  it('takes the console itself (pino and the console share the shape)', () => {
    expect(
      () => new Worker({ service: 's', shards: 1, handler: () => undefined, logger: console as never }),
    ).not.toThrow();
  });

  it('survives a logger that throws', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const throwing: Logger = {
        debug: () => undefined,
        info: () => undefined,
        warn: () => {
          throw new Error('log sink down');
        },
        error: () => undefined,
      };
      const cluster = new Cluster(1);
      const { worker } = cluster.add({
        logger: throwing,
        retry: { maximumAttempts: 1 },
        handler: () => {
          throw new Error('boom');
        },
      });
      await started(worker);
      await vi.advanceTimersByTimeAsync(10);
      expect(worker.state).toBe('running');
      expect(error).toHaveBeenCalledWith(
        expect.stringMatching(/logger's warn\(\) threw: log sink down; the message was: shard 0 do failed/),
      );
      await cluster.stopAll();
    } finally {
      error.mockRestore();
    }
  });
});

describe('consoleLogger', () => {
  it('prints at its level and above, prefixed with the scope, the job queue or the service', () => {
    const spies = {
      debug: vi.spyOn(console, 'debug'),
      info: vi.spyOn(console, 'info'),
      warn: vi.spyOn(console, 'warn'),
    };
    for (const spy of Object.values(spies)) spy.mockImplementation(() => undefined);
    try {
      const logger = consoleLogger({ level: 'info' });
      logger.debug({ service: 'a' }, 'hidden');
      logger.info({ service: 'billing' }, 'shown');
      logger.warn({ queue: 'default', jobId: 'j1' }, 'a job line');
      logger.warn({ scope: 'queue default', service: 'x' }, 'a queue worker line');
      expect(spies.debug).not.toHaveBeenCalled();
      expect(spies.info).toHaveBeenCalledWith('[shardwork billing] shown');
      expect(spies.warn.mock.calls.map((c) => c[0])).toEqual([
        '[shardwork jobs default] a job line',
        '[shardwork queue default] a queue worker line',
      ]);
      expect(() => consoleLogger({ level: 'loud' as never })).toThrow(InvalidOptionsError);
    } finally {
      for (const spy of Object.values(spies)) spy.mockRestore();
    }
  });
});
