// How `kubectl livepatch status` shows status.topology: one line, every zone
// with its progress when there are few, counts and the zones in flight when
// there are many.
import type { LivePatch, ZoneProgress } from '../api/generated/types.js';
import { zoneName } from '../controller/topology-budget.js';

/** Up to this many zones, each is shown; beyond, counts and the zones in flight. */
const ZONES_SHOWN = 6;
/** Zones in flight named on the compact line; the rest are counted. */
const IN_FLIGHT_SHOWN = 4;

function zoneText(z: ZoneProgress, key: string): string {
  const flying = z.inFlight ? ` (${z.inFlight} in flight)` : '';
  return `${zoneName(z.zone, key)} ${z.patched}/${z.targeted}${flying}`;
}

/** "  zones (topology.kubernetes.io/zone, zone by zone, 1 in flight per zone): eu-1a 3/3, eu-1b 1/3 (1 in flight), …" */
export function zoneLines(lp: LivePatch): string[] {
  const t = lp.status?.topology;
  if (!t) return [];
  const spec = lp.spec.rollout.topology;
  const how = [
    t.key,
    ...(spec?.order === 'ZoneByZone' ? ['zone by zone'] : []),
    ...(spec?.maxUnavailable !== undefined ? [`${spec.maxUnavailable} in flight per zone`] : []),
  ].join(', ');
  if (t.groups <= ZONES_SHOWN && t.zones.length === t.groups)
    return [`  zones (${how}): ${t.zones.map((z) => zoneText(z, t.key)).join(', ')}`];
  const flying = t.zones.filter((z) => z.inFlight > 0);
  const named = flying.slice(0, IN_FLIGHT_SHOWN).map((z) => zoneText(z, t.key));
  const more = flying.length > IN_FLIGHT_SHOWN ? [`${flying.length - IN_FLIGHT_SHOWN} more`] : [];
  const unlabeled = t.unlabeled ? `; ${t.unlabeled} node(s) without ${t.key}` : '';
  const inFlight = named.length ? `; in flight: ${[...named, ...more].join(', ')}` : '';
  return [`  zones (${how}): ${t.finished}/${t.groups} finished${inFlight}${unlabeled}`];
}
