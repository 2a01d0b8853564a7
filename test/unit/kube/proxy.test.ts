// Which proxy a request to the API server takes, as kubectl decides it.
import { describe, expect, test } from '@jest/globals';
import { proxyFor } from '../../../src/kube/proxy.js';

const PROXY = 'http://proxy.corp:3128';
const via = (server: string, env: NodeJS.ProcessEnv, proxyUrl?: string): string | undefined =>
  proxyFor(new URL(server), proxyUrl, env)?.toString();

describe('the proxy for an API server', () => {
  test("the cluster's proxy-url wins, for every host, loopback and NO_PROXY included", () => {
    expect(via('https://127.0.0.1:6443', { NO_PROXY: '*' }, 'http://p:8080')).toBe(
      'http://p:8080/',
    );
  });

  test('HTTPS_PROXY for https servers, HTTP_PROXY for http ones; upper case before lower', () => {
    const env = { HTTPS_PROXY: PROXY, http_proxy: 'http://plain:80', https_proxy: 'http://low:1' };
    expect(via('https://api.example.com', env)).toBe(`${PROXY}/`);
    expect(via('http://api.example.com', env)).toBe('http://plain/');
    expect(via('https://api.example.com', { https_proxy: 'low:1' })).toBe('http://low:1/');
  });

  test('never through the environment for localhost or a loopback address', () => {
    const env = { HTTPS_PROXY: PROXY };
    for (const server of ['https://localhost:6443', 'https://127.0.0.9', 'https://[::1]:6443'])
      expect(via(server, env)).toBeUndefined();
    expect(via('https://10.0.0.1', env)).toBe(`${PROXY}/`);
  });

  test.each([
    ['*', 'https://api.example.com', false],
    ['example.com', 'https://api.example.com', false],
    ['example.com', 'https://example.com', false],
    ['.example.com', 'https://example.com', true],
    ['*.example.com', 'https://api.example.com', false],
    ['ample.com', 'https://api.example.com', true],
    ['10.0.0.0/8', 'https://10.1.2.3:6443', false],
    ['10.0.0.0/8', 'https://11.1.2.3:6443', true],
    ['fd00::/8', 'https://[fd00::1]:6443', false],
    ['10.1.2.3', 'https://10.1.2.3', false],
    ['api.example.com:6443', 'https://api.example.com:6443', false],
    ['api.example.com:443', 'https://api.example.com:6443', true],
    [' other.org , API.example.com ', 'https://api.example.com', false],
  ])('NO_PROXY=%s, server %s: proxied %s', (noProxy, server, proxied) => {
    expect(via(server, { HTTPS_PROXY: PROXY, NO_PROXY: noProxy }) !== undefined).toBe(proxied);
  });

  test('a socks proxy is refused with a reason, not ignored', () => {
    expect(() => via('https://api.example.com', {}, 'socks5://p:1080')).toThrow(
      /only http:\/\/ proxies/,
    );
  });
});
