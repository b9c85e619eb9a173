import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../functions/commons/host.js';

describe('normalizeHost', () => {
  it.each([
    ['HTTPS://X:443/', 'https://x'],
    ['https://x', 'https://x'],
    ['HTTPS://API.BigState.dev:443/', 'https://api.bigstate.dev'],
    ['https://api.bigstate.dev//', 'https://api.bigstate.dev'],
    ['http://127.0.0.1:80/', 'http://127.0.0.1'],
    ['http://localhost:8080/', 'http://localhost:8080'],
    ['http://[0:0:0:0:0:0:0:1]:9000', 'http://[::1]:9000'],
    ['https://proxy.example/BigState/', 'https://proxy.example/BigState'],
    ['https://Bücher.example', 'https://xn--bcher-kva.example'],
  ])('spells %j as %j', (host, normalized) => {
    expect(normalizeHost(host)).toBe(normalized);
  });

  it('takes a URL object as well as a string', () => {
    expect(normalizeHost(new URL('HTTPS://X:443/'))).toBe('https://x');
  });

  it('is idempotent', () => {
    for (const host of ['HTTPS://X:443/', 'http://localhost:8080/a/', 'https://x/b']) {
      expect(normalizeHost(normalizeHost(host))).toBe(normalizeHost(host));
    }
  });

  it('never records credentials, a query or a fragment', () => {
    expect(normalizeHost('https://user:secret@x/p?token=1#f')).toBe('https://x/p');
  });

  it.each([
    ['https://x', 'http://x'],
    ['https://x', 'https://x:8443'],
    ['https://x/a', 'https://x/b'],
    ['https://x/a', 'https://x'],
    ['https://x.example', 'https://y.example'],
  ])('keeps %j and %j apart', (a, b) => {
    expect(normalizeHost(a)).not.toBe(normalizeHost(b));
  });

  it('throws a TypeError for a host that is not an absolute URL', () => {
    expect(() => normalizeHost('api.bigstate.dev')).toThrow(TypeError);
    expect(() => normalizeHost('')).toThrow(TypeError);
  });
});
