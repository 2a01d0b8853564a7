// How a message names many things at once: the first few, then how many more,
// so that a fleet of any size leaves every message short enough for the API.

/** "a, b, c and 97 more" */
export function listSome(items: readonly string[], max: number, separator = ', '): string {
  const shown = items.slice(0, max).join(separator);
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** A text cut to `max` characters, marked where it was cut. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
