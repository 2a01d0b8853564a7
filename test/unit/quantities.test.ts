import { describe, expect, test } from '@jest/globals';
import { durationMs, formatDuration, scaleIntOrPercent } from '../../src/api/quantities.js';

describe('durations as the API spells them', () => {
  test.each([
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['0s', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(durationMs(text)).toBe(ms);
  });

  test.each(['', '10', '5 minutes', '-5s', '1d'])('%j is refused', (text) => {
    expect(() => durationMs(text)).toThrow(/duration/);
  });

  test('formats back the way people write them', () => {
    expect(formatDuration(125_000)).toBe('2m5s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(750)).toBe('750ms');
    expect(formatDuration(0)).toBe('0ms');
  });
});

describe('maxUnavailable: int or percent, rounded up, at least 1', () => {
  test.each([
    [3, 20, 3],
    ['25%', 20, 5],
    ['10%', 11, 2],
    ['1%', 5, 1],
    ['100%', 7, 7],
    ['50%', 0, 1],
  ] as const)('%j of %d nodes is %d', (value, total, expected) => {
    expect(scaleIntOrPercent(value, total)).toBe(expected);
  });

  test.each([0, -1, 1.5, '0%', '101%', 'half'])('%j is refused', (value) => {
    expect(() => scaleIntOrPercent(value, 10)).toThrow();
  });
});
