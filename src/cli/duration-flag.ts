// A command-line duration flag read the way every command reads one: a bad
// value names the flag and says what to give instead.
import { durationMs } from '../api/quantities.js';

export function durationFlag(flag: string, value: string): number {
  try {
    return durationMs(value);
  } catch (err) {
    throw new Error(
      `--${flag} ${JSON.stringify(value)}: ${(err as Error).message}; give a duration such as 90s or 5m`,
      { cause: err },
    );
  }
}
