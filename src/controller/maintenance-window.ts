// A maintenance window (spec.rollout.window) read at an instant: open or not,
// when it closes, when it opens next. Pure: the instant is an input, and the
// wall clock of the window's time zone comes from Intl (the ICU in Node).
//
// Each listed day D opens the window once, from startTime on D to endTime on
// D (or on D+1 when endTime is not after startTime: it crosses midnight, or
// is 24:00). A wall time maps to the first instant the zone's clock reaches
// it: a time daylight saving skips (02:30 in Europe/Berlin on the last Sunday
// of March) is reached when the clock jumps past it (03:00 CEST), and a time
// the clock shows twice (the last Sunday of October) at its first showing.
// So a window the clock skips entirely that day (02:00 to 03:00) stays shut
// that day, and one from 02:00 to 03:00 on the day an hour repeats lasts two
// hours. Openings that touch (every day, 00:00 to 24:00) are one opening.
import { WEEK_DAYS } from '../api/constants.js';
import type { MaintenanceWindow, WeekDay, WindowStatus } from '../api/generated/types.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Days looked ahead for the next opening: two weeks covers a weekly window whose day DST skips once. */
const HORIZON_DAYS = 15;

const WEEKDAY = Object.fromEntries(
  WEEK_DAYS.flatMap((names, day) => names.map((name) => [name, day])),
) as Record<WeekDay, number>;

const DAY_NAMES = WEEK_DAYS.map(([full]) => full);

/** The window as read at one instant. Times are epoch milliseconds. */
export type WindowReading =
  | { readonly kind: 'invalid'; readonly message: string }
  | {
      readonly kind: 'open';
      /** Absent when it does not close within the horizon (open all day, every day). */
      readonly closesAt?: number;
      readonly nextOpen?: number;
      readonly describe: string;
      readonly timeZone: string;
    }
  | {
      readonly kind: 'closed';
      /** Absent only if no opening falls within the horizon. */
      readonly nextOpen?: number;
      readonly describe: string;
      readonly timeZone: string;
    };

interface Opening {
  readonly from: number;
  readonly to: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** One formatter per zone: making one costs far more than using it. Throws RangeError on an unknown zone. */
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's wall clock at an instant, written as if it were a UTC instant (so arithmetic on it is plain). */
function wallClock(timeZone: string, at: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(at))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const n = (k: string): number => parts[k] ?? 0;
  const ms = ((at % 1000) + 1000) % 1000;
  return Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) + ms;
}

const offsetAt = (timeZone: string, at: number): number => wallClock(timeZone, at) - at;

/**
 * The first instant at which the zone's clock shows `wall` or later. A wall
 * time is shown at most at two instants (one per offset around a change);
 * none at all inside a skipped hour, where the answer is the jump itself.
 */
function reach(timeZone: string, wall: number): number {
  const candidates = [
    wall - offsetAt(timeZone, wall - DAY_MS),
    wall - offsetAt(timeZone, wall + DAY_MS),
  ];
  const shown = candidates.filter((t) => wallClock(timeZone, t) === wall);
  if (shown.length) return Math.min(...shown);
  // Skipped: between the candidates the clock jumps from before `wall` to after it.
  let lo = Math.min(...candidates);
  let hi = Math.max(...candidates);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallClock(timeZone, mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

const minutesOf = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
};

const daysOf = (w: MaintenanceWindow): Set<number> =>
  new Set((w.days ?? DAY_NAMES).map((d) => WEEKDAY[d]));

/** "saturday, sunday 01:00-05:00 Europe/Berlin", "every day 22:00-04:00 UTC". */
export function describeWindow(w: MaintenanceWindow): string {
  const days = daysOf(w);
  const which =
    days.size === 7
      ? 'every day'
      : [...days]
          // Monday first, as a week is read at work: "saturday, sunday".
          .sort((a, b) => ((a + 6) % 7) - ((b + 6) % 7))
          .map((d) => DAY_NAMES[d])
          .join(', ');
  return `${which} ${w.startTime}-${w.endTime} ${w.timeZone}`;
}

/**
 * The openings of the listed days from the day before `now` on, in order,
 * touching ones merged. The last one ends at Infinity when it runs on past
 * the horizon (open all day, every day).
 */
function* openings(
  timeZone: string,
  days: ReadonlySet<number>,
  start: number,
  end: number,
  now: number,
): Generator<Opening> {
  const today = Math.floor(wallClock(timeZone, now) / DAY_MS) * DAY_MS;
  const closeAfter = end > start ? end : end + 24 * 60;
  let run: Opening | undefined;
  for (let k = -1; k <= HORIZON_DAYS + 1; k++) {
    const day = today + k * DAY_MS;
    if (!days.has(new Date(day).getUTCDay())) continue;
    const from = reach(timeZone, day + start * MINUTE_MS);
    const to = reach(timeZone, day + closeAfter * MINUTE_MS);
    if (to <= from) continue;
    if (run && from <= run.to) {
      run = { from: run.from, to: k > HORIZON_DAYS ? Infinity : to };
      continue;
    }
    // The day past the horizon only says whether the last opening runs on.
    if (k > HORIZON_DAYS) break;
    if (run) yield run;
    run = { from, to };
  }
  if (run) yield run;
}

/** Whether the window is open at `now`, when it closes, and when it opens next. */
export function readWindow(w: MaintenanceWindow, now: number): WindowReading {
  const timeZone = w.timeZone;
  try {
    formatter(timeZone);
  } catch {
    return {
      kind: 'invalid',
      message:
        `spec.rollout.window.timeZone "${timeZone}" is not a time zone this controller knows: give an IANA ` +
        'name such as Europe/Berlin or America/New_York (or leave it out for UTC)',
    };
  }
  const days = daysOf(w);
  const text = describeWindow(w);
  const start = minutesOf(w.startTime);
  const end = minutesOf(w.endTime);
  const runs = openings(timeZone, days, start, end, now);
  for (const run of runs) {
    if (run.to <= now) continue;
    const finite = (t: number): number | undefined => (Number.isFinite(t) ? t : undefined);
    if (run.from > now) {
      return { kind: 'closed', nextOpen: run.from, describe: text, timeZone };
    }
    const after = runs.next();
    const closesAt = finite(run.to);
    const nextOpen = after.done ? undefined : after.value.from;
    return {
      kind: 'open',
      ...(closesAt !== undefined ? { closesAt } : {}),
      ...(nextOpen !== undefined ? { nextOpen } : {}),
      describe: text,
      timeZone,
    };
  }
  return { kind: 'closed', describe: text, timeZone };
}

/** An instant to the second, as status and messages give it: 2026-03-29T01:00:00Z. */
export const isoSeconds = (at: number): string =>
  new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** An instant on the window's own clock: "Sun 2026-03-29 03:00 Europe/Berlin (UTC+02:00)". */
export function localTime(timeZone: string, at: number): string {
  const wall = new Date(wallClock(timeZone, at));
  const offset = Math.round(offsetAt(timeZone, at) / MINUTE_MS);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const day = DAY_NAMES[wall.getUTCDay()]?.slice(0, 3) ?? '';
  const date = wall.toISOString().slice(0, 10);
  return `${day[0]?.toUpperCase() ?? ''}${day.slice(1)} ${date} ${pad(wall.getUTCHours())}:${pad(wall.getUTCMinutes())} ${timeZone} (UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)})`;
}

/** "2026-03-29T01:00:00Z (Sun 2026-03-29 03:00 Europe/Berlin (UTC+02:00))" */
export const bothClocks = (timeZone: string, at: number): string =>
  `${isoSeconds(at)} (${localTime(timeZone, at)})`;

/** status.window for a reading; undefined for an invalid window (the conditions say why). */
export function windowStatus(r: WindowReading): WindowStatus | undefined {
  if (r.kind === 'invalid') return undefined;
  const nextOpen = r.nextOpen !== undefined ? { nextOpen: isoSeconds(r.nextOpen) } : {};
  if (r.kind === 'closed') return { open: false, ...nextOpen };
  return {
    open: true,
    ...(r.closesAt !== undefined ? { closesAt: isoSeconds(r.closesAt) } : {}),
    ...nextOpen,
  };
}

/** Milliseconds until the window next opens or closes, if it does within the horizon. */
export function untilChange(r: WindowReading, now: number): number | undefined {
  if (r.kind === 'invalid') return undefined;
  const next = r.kind === 'open' ? r.closesAt : r.nextOpen;
  return next === undefined ? undefined : Math.max(1, next - now);
}
