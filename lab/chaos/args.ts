// `npm run chaos`'s command line, parsed once into a typed value; every
// mistake is a usage error that says what was wrong and what is accepted.
import { parseArgs } from 'node:util';

export interface ChaosArgs {
  /** The seed to replay; none: a fresh one. */
  readonly seed?: number;
  readonly scenarios: readonly string[];
  /** Scenarios were named: only their rows of chaos.json are replaced. */
  readonly named: boolean;
  /** A few faults per scenario, figures not written. */
  readonly slice: boolean;
}

export class ChaosUsageError extends Error {
  override readonly name = 'ChaosUsageError';
}

const USAGE = 'usage: npm run chaos -- [--seed N] [--scenario NAME]... [--slice]';

function parseSeed(text: string, from: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n) || n < 0)
    throw new ChaosUsageError(
      `${from} takes a whole number of 0 or more, not ${JSON.stringify(text)}`,
    );
  return n;
}

export function parseChaosArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  known: readonly string[],
): ChaosArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        seed: { type: 'string' },
        scenario: { type: 'string', multiple: true },
        slice: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new ChaosUsageError(`${(err as Error).message}\n${USAGE}`);
  }
  const scenarios = values.scenario ?? known;
  const unknown = scenarios.filter((s) => !known.includes(s));
  if (unknown.length)
    throw new ChaosUsageError(
      `unknown scenario ${unknown.join(', ')}; the scenarios are ${known.join(', ')}`,
    );
  const seedText = values.seed ?? env['CHAOS_SEED'];
  const from = values.seed !== undefined ? '--seed' : 'CHAOS_SEED';
  return {
    ...(seedText !== undefined ? { seed: parseSeed(seedText, from) } : {}),
    scenarios,
    named: values.scenario !== undefined,
    slice: values.slice,
  };
}
