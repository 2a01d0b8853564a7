// The JSON merge patch (RFC 7386) that turns one object into another. A merge
// patch keeps every key it does not name, at any depth: a status whose nested
// object lost a field (a window's closesAt once it closes) would otherwise keep
// the old value, and never compare equal to what the controller computes.
// Pure.

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The patch that makes `before` into `after`: keys `after` lacks are null,
 * objects are patched key by key, and anything else (arrays included, which a
 * merge patch replaces whole) is `after`'s value. Keys equal on both sides are
 * left out.
 */
export function mergePatchFrom(before: unknown, after: unknown): Json {
  if (!isObject(before) || !isObject(after)) return (after ?? null) as Json;
  const patch: Record<string, Json> = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (value === undefined) continue;
    const old = before[key];
    if (JSON.stringify(old) === JSON.stringify(value)) continue;
    patch[key] = isObject(old) && isObject(value) ? mergePatchFrom(old, value) : (value as Json);
  }
  return patch;
}
