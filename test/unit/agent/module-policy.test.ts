// Which redirects a module download follows, what an HTTP answer means, and
// how a URL is shown: pure rules, table-tested.
import { describe, expect, test } from '@jest/globals';
import {
  httpRefusal,
  redirectHostList,
  redirectRefusal,
  shownUrl,
} from '../../../agent/module/module-policy.js';

describe('redirects a module download follows', () => {
  test.each([
    ['https://m.example/a.ko', 'https://m.example/b.ko', [], true],
    ['http://m.example/a.ko', 'http://m.example/b.ko', [], true],
    ['http://m.example/a.ko', 'https://m.example/a.ko', [], true],
    ['http://m.example:8080/a.ko', 'https://m.example/a.ko', [], true],
    ['http://m.example/a.ko', 'https://m.example:8443/a.ko', [], false],
    ['https://m.example/a.ko', 'http://m.example/a.ko', [], false],
    ['https://m.example/a.ko', 'http://cdn.example/a.ko', ['cdn.example'], false],
    ['https://m.example/a.ko', 'https://cdn.example/a.ko', [], false],
    ['https://m.example/a.ko', 'https://cdn.example/a.ko', ['cdn.example'], true],
    ['https://m.example/a.ko', 'https://m.example:8443/a.ko', [], false],
    ['https://m.example/a.ko', 'file:///etc/shadow', ['m.example'], false],
    ['https://m.example/a.ko', 'ftp://m.example/a.ko', [], false],
  ] as const)('%s → %s (allowed %j): followed %s', (from, to, allowed, followed) => {
    const refusal = redirectRefusal(new URL(from), new URL(to), allowed);
    expect(refusal === undefined).toBe(followed);
  });

  test('a host listed in capitals is allowed: URL hostnames are lower-case', () => {
    const allowed = redirectHostList(' CDN.Example , ,mirror.example');
    expect(allowed).toEqual(['cdn.example', 'mirror.example']);
    expect(
      redirectRefusal(new URL('https://m.example/a'), new URL('https://CDN.example/a'), allowed),
    ).toBeUndefined();
  });

  test('a refusal says why and how to allow it', () => {
    expect(
      redirectRefusal(new URL('https://m.example/a'), new URL('https://cdn.example/a'), []),
    ).toContain(
      "listed in the agent's --module-redirect-hosts (the chart's modules.redirectHosts)",
    );
    expect(
      redirectRefusal(new URL('https://m.example/a'), new URL('http://m.example/a'), []),
    ).toContain('from https down to plain http');
    expect(redirectRefusal(new URL('https://m.example/a'), new URL('file:///x'), [])).toContain(
      'a file: URL',
    );
  });
});

describe('what an HTTP answer means for a module download', () => {
  test.each([
    [404, false, 'HTTP 404 Not Found: no file there'],
    [410, false, 'HTTP 410 Gone'],
    [403, false, 'the agent sends no credentials'],
    [401, false, 'HTTP 401 Unauthorized'],
    [418, false, 'HTTP 418'],
    [500, true, 'HTTP 500 Internal Server Error'],
    [503, true, 'HTTP 503 Service Unavailable'],
    [429, true, 'HTTP 429 Too Many Requests'],
    [408, true, 'HTTP 408'],
  ])('%i: retryable %s', (code, retryable, words) => {
    const verdict = httpRefusal(code);
    expect(verdict.retryable).toBe(retryable);
    expect(verdict.message).toContain(words);
  });
});

describe('a URL in a message', () => {
  test('keeps scheme, host and path, never credentials or the query (it may carry a token)', () => {
    expect(shownUrl('https://user:secret@m.example:8443/p/a.ko?X-Amz-Signature=abc')).toBe(
      'https://m.example:8443/p/a.ko?…',
    );
  });

  test('cuts a long path short, so the cause still fits the status message', () => {
    const shown = shownUrl(`https://m.example/${'a'.repeat(2000)}.ko`);
    expect(shown.length).toBeLessThan(200);
    expect(shown.endsWith('…')).toBe(true);
  });
});
