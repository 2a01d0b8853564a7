import { describe, expect, test } from '@jest/globals';
import type { LivePatchNode } from '../../../src/api/generated/types.js';
import { HeartbeatClock } from '../../../src/controller/heartbeats.js';

const lpn = (heartbeatTime: string): LivePatchNode => ({
  apiVersion: 'livepatch.io/v1alpha1',
  kind: 'LivePatchNode',
  metadata: { name: 'n1' },
  spec: {},
  status: { heartbeatTime },
});

describe('heartbeats are judged on the controller clock', () => {
  test('a node whose clock is an hour behind still counts as fresh while its heartbeat moves', () => {
    const clock = new HeartbeatClock();
    const now = Date.UTC(2026, 10, 25, 12);
    const skewed = (s: number): string => new Date(now - 3_600_000 + s * 1000).toISOString();
    expect(clock.observe([lpn(skewed(0))], now).get('n1')?.status?.heartbeatTime).toBe(
      new Date(now).toISOString(),
    );
    expect(clock.observe([lpn(skewed(30))], now + 30_000).get('n1')?.status?.heartbeatTime).toBe(
      new Date(now + 30_000).toISOString(),
    );
  });

  test('a heartbeat that stops changing ages from when it was last seen to change', () => {
    const clock = new HeartbeatClock();
    const now = Date.UTC(2026, 10, 25, 12);
    clock.observe([lpn('2030-01-01T00:00:00.000Z')], now);
    const later = clock.observe([lpn('2030-01-01T00:00:00.000Z')], now + 120_000);
    expect(later.get('n1')?.status?.heartbeatTime).toBe(new Date(now).toISOString());
  });
});
