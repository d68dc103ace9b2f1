import { redactUrl, unencodedUserinfo } from '@shardwork/core';
import { describe, expect, it } from 'vitest';

describe('passwords in URLs', () => {
  it('redacts the password up to the last @, whatever characters it holds', () => {
    expect(redactUrl('redis://app:s3cret@127.0.0.1:6379/0')).toBe('redis://app:***@127.0.0.1:6379/0');
    expect(redactUrl('redis://app:s3cr#et@127.0.0.1:6379')).toBe('redis://app:***@127.0.0.1:6379');
    expect(redactUrl('redis://app:s3cr?et@127.0.0.1:6379')).toBe('redis://app:***@127.0.0.1:6379');
    expect(redactUrl('redis://u:p@ss:w/rd@127.0.0.1')).toBe('redis://u:***@127.0.0.1');
    expect(redactUrl('etcds://:only-password@h:2379')).toBe('etcds://:***@h:2379');
    expect(redactUrl('redis:/u:s3cret@h')).toBe('redis:/u:***@h');
  });

  it('leaves URLs without a password as they are', () => {
    for (const url of [
      'redis://127.0.0.1:6379',
      'redis://user@h:6379',
      'memory://',
      'etcd://h1:2379,h2:2379?prefix=a',
    ]) {
      expect(redactUrl(url)).toBe(url);
    }
  });

  it('names user info that must be percent-encoded, without quoting it', () => {
    for (const url of ['redis://app:s3cr#et@h', 'redis://app:s3cr?et@h', 'redis://u:p/w@h', 'amqp://u:a#b@h/vhost']) {
      const why = unencodedUserinfo(url);
      expect(why).toMatch(/percent-encoded/);
      expect(why).not.toMatch(/s3cr|p\/w|a#b/);
    }
    for (const url of ['redis://app:s3cr%23et@h', 'redis://h:6379/0?prefix=a', 'redis://u:p@ss@h', 'memory://']) {
      expect(unencodedUserinfo(url)).toBeUndefined();
    }
  });
});
