// Durations and int-or-percent values as the API spells them, and their meaning.

/** A Go-style duration such as "90s" or "1h30m"; the CRD schema checks the shape. */
export type Duration = string;
/** An integer, or a percentage such as "25%". */
export type IntOrPercent = number | string;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/y;

export class InvalidQuantityError extends Error {
  override readonly name = 'InvalidQuantityError';
}

/** Milliseconds in a duration; throws on anything the CRD would not have accepted. */
export function durationMs(value: Duration): number {
  if (value === '') throw new InvalidQuantityError('empty duration');
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < value.length) {
    const start = PART.lastIndex;
    const match = PART.exec(value);
    if (!match?.[1] || !match[2]) {
      throw new InvalidQuantityError(
        `invalid duration ${JSON.stringify(value)} at offset ${start}`,
      );
    }
    total += Number(match[1]) * (UNIT_MS[match[2]] ?? 0);
  }
  return Math.round(total);
}

/** Formats milliseconds the way people write durations: "2m5s", "750ms". */
export function formatDuration(ms: number): Duration {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  seconds -= h * 3600;
  const m = Math.floor(seconds / 60);
  seconds -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${seconds || (!h && !m) ? `${seconds}s` : ''}`;
}

/**
 * Resolves maxUnavailable-style values against a total: percentages round
 * up, and the result is never below 1 so a rollout always moves.
 */
export function scaleIntOrPercent(value: IntOrPercent, total: number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidQuantityError(`invalid count ${value}`);
    return value;
  }
  const match = /^(100|[1-9][0-9]?)%$/.exec(value);
  if (!match?.[1]) throw new InvalidQuantityError(`invalid percentage ${JSON.stringify(value)}`);
  return Math.max(1, Math.ceil((Number(match[1]) * total) / 100));
}
