// Debian's order of package versions (epoch:upstream-revision), as dpkg
// compares them: needed to pick the newest build when a pinned one is gone.

function parts(v: string): { epoch: number; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon < 0 ? 0 : Number(v.slice(0, colon));
  const rest = colon < 0 ? v : v.slice(colon + 1);
  const dash = rest.lastIndexOf('-');
  return dash < 0
    ? { epoch, upstream: rest, revision: '' }
    : { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** dpkg's weight of one non-digit character: `~` before the end, the end before letters, letters before the rest. */
function weight(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** A string as alternating runs: non-digits, digits, non-digits, … (each possibly empty). */
function runs(s: string): string[] {
  return [...s.matchAll(/(\D*)(\d*)/g)]
    .filter((m) => m[0] !== '')
    .flatMap((m) => [m[1] ?? '', m[2] ?? '']);
}

/** Non-digit runs character by character, by weight (the end counts as weight 0). */
function compareLetters(a: string, b: string): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = weight(a[i]) - weight(b[i]);
    if (d !== 0) return d;
  }
  return 0;
}

/** Digit runs by value, however long. */
function compareNumbers(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** dpkg's verrevcmp: the runs in turn, letters by weight and digits by value. */
function compareFragment(a: string, b: string): number {
  const x = runs(a);
  const y = runs(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d =
      i % 2 === 0 ? compareLetters(x[i] ?? '', y[i] ?? '') : compareNumbers(x[i] ?? '', y[i] ?? '');
    if (d !== 0) return d;
  }
  return 0;
}

/** Negative if `a` is older than `b`, 0 if equal, positive if newer. */
export function compareDebianVersions(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return compareFragment(x.upstream, y.upstream) || compareFragment(x.revision, y.revision);
}
