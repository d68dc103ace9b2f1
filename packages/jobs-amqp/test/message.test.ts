import { describe, expect, it } from 'vitest';
import { decode, encode } from '../src/message.js';

describe('job message bodies', () => {
  it('carry the traceparent through a failed attempt and back', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const body = encode({
      id: 'j1',
      handler: 'report',
      queue: 'default',
      key: undefined,
      args: { month: 11 },
      enqueuedAt: 1,
      runAt: 1,
      traceparent,
    });
    const received = decode(body);
    if (typeof received === 'string') throw new Error(received);
    expect(received.traceparent).toBe(traceparent);
    const again = received.failed({ name: 'Error', message: 'x', at: 2 }, 3);
    const reread = decode(encode(again));
    expect(typeof reread === 'string' ? reread : reread.traceparent).toBe(traceparent);
    const plain = decode(
      encode({ id: 'j2', handler: 'h', queue: 'q', key: undefined, args: {}, enqueuedAt: 1, runAt: 1 }),
    );
    expect(typeof plain === 'string' ? plain : plain.traceparent).toBeUndefined();
  });
});
