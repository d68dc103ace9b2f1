import {
  compileOptions,
  compileRetry,
  compileSchedule,
  InvalidCronError,
  InvalidOptionsError,
  InvalidParamsError,
  parseParams,
  UnknownProtocolError,
  Worker,
  type WorkerOptions,
} from '@shardwork/core';
import { ProtocolRegistry } from '@shardwork/core/backend';
import { describe, expect, it } from 'vitest';

describe('parseParams', () => {
  it('parses goworker strings, arrays and objects', () => {
    expect([...parseParams('0=beijing, 1=shanghai,2=a=b', 4)]).toEqual([
      [0, 'beijing'],
      [1, 'shanghai'],
      [2, 'a=b'],
    ]);
    expect([...parseParams(['x', 'y'], 2)]).toEqual([
      [0, 'x'],
      [1, 'y'],
    ]);
    expect([...parseParams({ 3: 'z' }, 4)]).toEqual([[3, 'z']]);
    expect(parseParams('', 4).size).toBe(0);
    expect(parseParams(undefined, 4).size).toBe(0);
  });

  it.each([
    ['0=a,1', /"1" is not of the form shard=value/],
    ['x=a', /"x" is not a shard index/],
    ['-1=a', /not a shard index/],
    ['0=a,0=b', /shard 0 is given twice/],
    ['9=a', /shard 9 is out of range: there are 4 shards/],
  ])('rejects %s with a clear error', (input, message) => {
    expect(() => parseParams(input, 4)).toThrow(InvalidParamsError);
    expect(() => parseParams(input, 4)).toThrow(message);
  });
});

describe('compileRetry', () => {
  it('has goworker defaults: 1 s, ×2, capped at 10× initial, unlimited attempts', () => {
    const policy = compileRetry(undefined);
    expect([1, 2, 3, 4, 5, 6, 50].map((a) => policy(a, new Error()))).toEqual([
      1000, 2000, 4000, 8000, 10000, 10000, 10000,
    ]);
  });

  it('stops after maximumAttempts and honours maximumIntervalMs', () => {
    const policy = compileRetry({
      initialIntervalMs: 10,
      backoffCoefficient: 3,
      maximumIntervalMs: 50,
      maximumAttempts: 4,
    });
    expect([1, 2, 3, 4].map((a) => policy(a, null))).toEqual([10, 30, 50, null]);
  });

  it('passes a custom function through', () => {
    const fn = (attempt: number): number | null => (attempt < 2 ? 5 : null);
    expect(compileRetry(fn)).toBe(fn);
  });

  it.each([
    [{ initialIntervalMs: -1 }, 'retry.initialIntervalMs'],
    [{ backoffCoefficient: 0.5 }, 'retry.backoffCoefficient'],
    [{ initialIntervalMs: 100, maximumIntervalMs: 50 }, 'retry.maximumIntervalMs'],
    [{ maximumAttempts: 1.5 }, 'retry.maximumAttempts'],
    [{ initialIntervalMs: 1000, maximumIntervalMs: 2 ** 31 }, 'retry.maximumIntervalMs'],
  ])('rejects %o naming %s', (options, option) => {
    expect(() => compileRetry(options)).toThrow(expect.objectContaining({ option }));
  });
});

describe('compileSchedule', () => {
  it('accepts five and six fields and time zones', () => {
    expect(compileSchedule('*/10 * * * * *')).toEqual({ cron: '*/10 * * * * *', timezone: undefined });
    expect(compileSchedule({ cron: '0 9 * * 1-5', timezone: 'Asia/Shanghai' })?.timezone).toBe('Asia/Shanghai');
  });

  it.each([['not a cron'], ['61 * * * *'], ['* * * * * * * *']])(
    'rejects %s with an error naming the expression',
    (expression) => {
      const error = (() => {
        try {
          compileSchedule(expression);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InvalidCronError);
      expect((error as Error).message).toContain(`"${expression}"`);
    },
  );

  // Issue 21: croner takes a seventh field (the year); the README promises 5 or 6.
  it.each([
    ['0 0 12 * * * 2030', 7],
    ['* * * * * * * *', 8],
    ['* * * *', 4],
  ])('refuses %s naming its %i fields and the accepted forms', (expression, count) => {
    const error = (() => {
      try {
        compileSchedule(expression);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidCronError);
    const message = (error as Error).message;
    expect(message).toContain(`"${expression}"`);
    expect(message).toContain(`has ${count} fields`);
    expect(message).toMatch(/accepts 5 fields .* 6 fields \(second first\)/);
    if (count === 7) expect(message).toMatch(/year.*not supported/);
  });

  it('accepts nicknames such as @daily', () => {
    expect(compileSchedule('@daily')).toEqual({ cron: '@daily', timezone: undefined });
  });

  it('rejects an unknown time zone', () => {
    expect(() => compileSchedule({ cron: '* * * * *', timezone: 'Mars/Olympus' })).toThrow(/Mars\/Olympus/);
  });
});

describe('compileOptions', () => {
  const base: WorkerOptions = { service: 'svc', shards: 4, handler: () => undefined };

  it('fills documented defaults', () => {
    const o = compileOptions(base);
    expect(o).toMatchObject({
      shardCount: 4,
      leaseTtlMs: 10_000,
      fenceMarginMs: 1000,
      revokeTimeoutMs: 10_000,
      resyncIntervalMs: 30_000,
      startTimeoutMs: 30_000,
      weight: 1,
      handleSignals: false,
    });
    expect(o.heartbeatIntervalMs).toBeCloseTo(10_000 / 3);
    expect(typeof o.handler.do).toBe('function');
  });

  it.each<[Partial<WorkerOptions>, string]>([
    [{ service: 'has space' }, 'service'],
    [{ service: 'a{b}' }, 'service'],
    [{ shards: 0 }, 'shards'],
    [{ shards: 2.5 }, 'shards'],
    [{ handler: {} as never }, 'handler'],
    [{ handler: { do: () => undefined, before: 3 as never } }, 'handler.before'],
    [{ strategy: 'random' as never }, 'strategy'],
    [{ leaseTtlMs: 10 }, 'leaseTtlMs'],
    [{ leaseTtlMs: 1000, heartbeatIntervalMs: 600 }, 'heartbeatIntervalMs'],
    [{ weight: 0 }, 'weight'],
    [{ discovery: 42 as never }, 'discovery'],
    [{ discovery: 'localhost:6379' }, 'discovery'],
    [{ discovery: 'redis:/host' }, 'discovery'],
    [{ discovery: '' }, 'discovery'],
    [{ labels: { a: 1 as never } }, 'labels.a'],
    [{ revokeTimeoutMs: 3e9 }, 'revokeTimeoutMs'],
    [{ resyncIntervalMs: 2 ** 31 }, 'resyncIntervalMs'],
    [{ host: 42 as never }, 'host'],
    [{ host: '' }, 'host'],
    [{ handleSignals: 'yes' as never }, 'handleSignals'],
  ])('rejects %o naming option %s', (override, option) => {
    expect(() => compileOptions({ ...base, ...override })).toThrow(InvalidOptionsError);
    expect(() => compileOptions({ ...base, ...override })).toThrow(expect.objectContaining({ option }));
  });

  it('rejects an unknown discovery scheme at construction, naming the registered ones', () => {
    expect(() => new Worker({ ...base, discovery: 'consul://x' })).toThrow(UnknownProtocolError);
    expect(() => new Worker({ ...base, discovery: 'consul://x' })).toThrow(
      /discovery backend.*"consul:\/\/".*redis:\/\//,
    );
  });

  it('reads SHARDWORK_DISCOVERY at construction and names it when it is malformed', () => {
    const saved = process.env.SHARDWORK_DISCOVERY;
    process.env.SHARDWORK_DISCOVERY = 'not a url';
    try {
      expect(() => new Worker(base)).toThrow(/SHARDWORK_DISCOVERY/);
    } finally {
      if (saved === undefined) delete process.env.SHARDWORK_DISCOVERY;
      else process.env.SHARDWORK_DISCOVERY = saved;
    }
  });

  it('treats an empty SHARDWORK_DISCOVERY as unset (memory://)', () => {
    const saved = process.env.SHARDWORK_DISCOVERY;
    process.env.SHARDWORK_DISCOVERY = '';
    try {
      expect(compileOptions(base).discovery).toBe('memory://');
    } finally {
      if (saved === undefined) delete process.env.SHARDWORK_DISCOVERY;
      else process.env.SHARDWORK_DISCOVERY = saved;
    }
  });

  it('never shows a password of a malformed discovery URL', () => {
    for (const url of [' redis://u:s3cret@127.0.0.1:6379', 'redis:/u:s3cret@127.0.0.1:6379', 'x y://u:s3cret@h']) {
      const error = (() => {
        try {
          compileOptions({ ...base, discovery: url });
        } catch (e) {
          return e as InvalidOptionsError;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(`${error?.message} ${String(error?.value)}`).not.toContain('s3cret');
    }
  });

  it('rejects bad cron and params at construction', () => {
    expect(() => compileOptions({ ...base, schedule: 'nope' })).toThrow(InvalidCronError);
    expect(() => compileOptions({ ...base, params: '7=x' })).toThrow(InvalidParamsError);
  });
});

describe('ProtocolRegistry', () => {
  const make = () =>
    new ProtocolRegistry<string, [number]>({
      kind: 'thing',
      option: 'thing',
      env: 'SHARDWORK_TEST_THING',
      fallback: 'mem://',
      examples: ['mem://'],
      builtin: { mem: (url, n) => `mem:${url}:${n}` },
      packages: { missing: '@shardwork/does-not-exist' },
      exportName: 'thingFromUrl',
    });

  it('creates built-in and registered protocols, case-insensitively, passing extra arguments', async () => {
    const r = make();
    r.register('custom', (url, n) => `custom:${url}:${n}`);
    expect(await r.create(undefined, 1)).toBe('mem:mem://:1');
    expect(await r.create('CUSTOM://a', 2)).toBe('custom:CUSTOM://a:2');
    expect(r.protocols()).toEqual(['custom', 'mem', 'missing']);
  });

  it('names the package to install when a lazily loaded protocol is missing', async () => {
    await expect(make().create('missing://x', 0)).rejects.toThrow(/Install @shardwork\/does-not-exist/);
  });

  it('refuses bad protocol names and factories', () => {
    expect(() => make().register('Bad://', () => 'x')).toThrow(InvalidOptionsError);
    expect(() => make().register('ok', 3 as never)).toThrow(InvalidOptionsError);
  });
});
