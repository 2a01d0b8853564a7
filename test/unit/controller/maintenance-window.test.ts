// The maintenance window's clock rules (maintenance-window.ts) on an injected
// instant: windows that cross midnight, listed days, the days daylight saving
// skips or repeats an hour, and zones whose local day is not the UTC day.
import { describe, expect, test } from '@jest/globals';
import type { MaintenanceWindow } from '../../../src/api/generated/types.js';
import {
  localTime,
  readWindow,
  untilChange,
  windowStatus,
  type WindowReading,
} from '../../../src/controller/maintenance-window.js';

const at = (text: string): number => Date.parse(text);
const window = (w: Partial<MaintenanceWindow>): MaintenanceWindow => ({
  startTime: '01:00',
  endTime: '05:00',
  timeZone: 'UTC',
  ...w,
});

/** The reading as a person checks it: ISO instants instead of epoch numbers. */
function read(w: Partial<MaintenanceWindow>, now: string): Record<string, unknown> {
  const r: WindowReading = readWindow(window(w), at(now));
  if (r.kind === 'invalid') return { kind: r.kind };
  const iso = (t: number | undefined): string | undefined =>
    t === undefined ? undefined : new Date(t).toISOString();
  return {
    kind: r.kind,
    nextOpen: iso(r.nextOpen),
    ...(r.kind === 'open' ? { closesAt: iso(r.closesAt) } : {}),
  };
}

// 2026-01-15 is a Thursday.
describe('a window every day, and on listed days', () => {
  test('every day 01:00-05:00 UTC: closed before, open inside (closing at 05:00), closed after until the next day', () => {
    expect(read({}, '2026-01-15T00:59:59Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-15T01:00:00.000Z',
    });
    expect(read({}, '2026-01-15T01:00:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-01-15T05:00:00.000Z',
      nextOpen: '2026-01-16T01:00:00.000Z',
    });
    expect(read({}, '2026-01-15T05:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-16T01:00:00.000Z',
    });
  });

  test('listed days only, full names and kured short forms alike: Thursday afternoon waits for Saturday', () => {
    for (const days of [
      ['saturday', 'sunday'],
      ['sat', 'sun'],
      ['sa', 'su'],
    ] as const) {
      expect(read({ days: [...days] }, '2026-01-15T12:00:00Z')).toEqual({
        kind: 'closed',
        nextOpen: '2026-01-17T01:00:00.000Z',
      });
      expect(read({ days: [...days] }, '2026-01-18T03:00:00Z')).toEqual({
        kind: 'open',
        closesAt: '2026-01-18T05:00:00.000Z',
        nextOpen: '2026-01-24T01:00:00.000Z',
      });
    }
  });

  test('00:00 to 24:00 on Saturday and Sunday is one opening from Saturday to Monday; on every day it never closes', () => {
    const weekend = { days: ['saturday', 'sunday'], startTime: '00:00', endTime: '24:00' } as const;
    expect(read({ ...weekend, days: [...weekend.days] }, '2026-01-17T23:59:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-01-19T00:00:00.000Z',
      nextOpen: '2026-01-24T00:00:00.000Z',
    });
    expect(read({ startTime: '00:00', endTime: '24:00' }, '2026-01-15T12:00:00Z')).toEqual({
      kind: 'open',
      closesAt: undefined,
      nextOpen: undefined,
    });
  });
});

describe('a window that crosses midnight belongs to the day it opens on', () => {
  const friday = { days: ['friday' as const], startTime: '22:00', endTime: '04:00' };

  test('friday 22:00-04:00: open early on Saturday, closing at 04:00', () => {
    expect(read(friday, '2026-01-17T02:00:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-01-17T04:00:00.000Z',
      nextOpen: '2026-01-23T22:00:00.000Z',
    });
  });

  test('friday 22:00-04:00: closed early on Friday (Thursday is not listed), and late on Saturday', () => {
    expect(read(friday, '2026-01-16T02:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-16T22:00:00.000Z',
    });
    expect(read(friday, '2026-01-17T23:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-23T22:00:00.000Z',
    });
  });
});

describe('daylight saving time in Europe/Berlin', () => {
  const berlin = (w: Partial<MaintenanceWindow>): Partial<MaintenanceWindow> => ({
    days: ['sunday'],
    timeZone: 'Europe/Berlin',
    ...w,
  });

  test('spring forward (2026-03-29, 02:00 CET jumps to 03:00 CEST): a 02:30 start opens at the jump, 03:00 CEST', () => {
    const w = berlin({ startTime: '02:30', endTime: '04:00' });
    expect(read(w, '2026-03-28T12:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-03-29T01:00:00.000Z',
    });
    expect(read(w, '2026-03-29T01:00:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-03-29T02:00:00.000Z',
      nextOpen: '2026-04-05T00:30:00.000Z',
    });
    // A week before, in winter time, 02:30 CET is 01:30 UTC.
    expect(read(w, '2026-03-21T12:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-03-22T01:30:00.000Z',
    });
  });

  test('spring forward: a window the clock skips entirely (02:00-03:00) does not open that day; the next Sunday it does', () => {
    expect(read(berlin({ startTime: '02:00', endTime: '03:00' }), '2026-03-28T12:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-04-05T00:00:00.000Z',
    });
  });

  test('fall back (2026-10-25, 03:00 CEST goes back to 02:00 CET): 02:00-03:00 spans both 02 hours, two hours long', () => {
    const w = berlin({ startTime: '02:00', endTime: '03:00' });
    expect(read(w, '2026-10-24T12:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-10-25T00:00:00.000Z',
    });
    // 02:30 CET, the second time the clock shows 02:30: still the same opening.
    expect(read(w, '2026-10-25T01:30:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-10-25T02:00:00.000Z',
      nextOpen: '2026-11-01T01:00:00.000Z',
    });
  });

  test('fall back: a window inside the repeated hour (02:30-02:45) opens once, at its first showing', () => {
    const w = berlin({ startTime: '02:30', endTime: '02:45' });
    expect(read(w, '2026-10-25T00:40:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-10-25T00:45:00.000Z',
      nextOpen: '2026-11-01T01:30:00.000Z',
    });
    // 02:35 CET, the clock's second 02:35: the window does not open again.
    expect(read(w, '2026-10-25T01:35:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-11-01T01:30:00.000Z',
    });
  });
});

describe('zones far from UTC', () => {
  test('Pacific/Auckland (UTC+13 in January): monday 09:00-10:00 is open on Sunday evening UTC', () => {
    const w = {
      days: ['monday' as const],
      startTime: '09:00',
      endTime: '10:00',
      timeZone: 'Pacific/Auckland',
    };
    expect(read(w, '2026-01-18T20:30:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-01-18T21:00:00.000Z',
      nextOpen: '2026-01-25T20:00:00.000Z',
    });
    // Monday 08:00 UTC is Monday 21:00 in Auckland: past the window, a week to wait.
    expect(read(w, '2026-01-19T08:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-25T20:00:00.000Z',
    });
  });

  test('America/Los_Angeles (UTC-8): friday 22:00-02:00 is open on Saturday morning UTC', () => {
    const w = {
      days: ['fri' as const],
      startTime: '22:00',
      endTime: '02:00',
      timeZone: 'America/Los_Angeles',
    };
    expect(read(w, '2026-01-17T08:00:00Z')).toEqual({
      kind: 'open',
      closesAt: '2026-01-17T10:00:00.000Z',
      nextOpen: '2026-01-24T06:00:00.000Z',
    });
    // Friday 20:00 UTC is Friday 12:00 in Los Angeles: it opens that night.
    expect(read(w, '2026-01-16T20:00:00Z')).toEqual({
      kind: 'closed',
      nextOpen: '2026-01-17T06:00:00.000Z',
    });
  });
});

describe('what the controller writes and says', () => {
  test('an unknown time zone is invalid, and the reading says what to give instead', () => {
    const r = readWindow(window({ timeZone: 'Europe/Berln' }), at('2026-01-15T12:00:00Z'));
    expect(r).toEqual({
      kind: 'invalid',
      message: expect.stringContaining('"Europe/Berln" is not a time zone this controller knows'),
    });
    expect(windowStatus(r)).toBeUndefined();
  });

  test('status.window to the second, and the time until the window next changes', () => {
    const now = at('2026-01-15T12:00:00Z');
    const closed = readWindow(window({}), now);
    expect(windowStatus(closed)).toEqual({ open: false, nextOpen: '2026-01-16T01:00:00Z' });
    expect(untilChange(closed, now)).toBe(13 * 3600_000);
    const open = readWindow(window({}), at('2026-01-16T04:00:00Z'));
    expect(windowStatus(open)).toEqual({
      open: true,
      closesAt: '2026-01-16T05:00:00Z',
      nextOpen: '2026-01-17T01:00:00Z',
    });
  });

  test('an instant on the window own clock names the day, the zone and its offset at that instant', () => {
    expect(localTime('Europe/Berlin', at('2026-03-29T01:00:00Z'))).toBe(
      'Sun 2026-03-29 03:00 Europe/Berlin (UTC+02:00)',
    );
    expect(localTime('Asia/Kathmandu', at('2026-01-15T12:00:00Z'))).toBe(
      'Thu 2026-01-15 17:45 Asia/Kathmandu (UTC+05:45)',
    );
    expect(localTime('America/Los_Angeles', at('2026-01-17T06:00:00Z'))).toBe(
      'Fri 2026-01-16 22:00 America/Los_Angeles (UTC-08:00)',
    );
  });
});
