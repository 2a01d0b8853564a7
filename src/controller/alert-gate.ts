// The alert gate as pure rules: which alerts of the source's last reading
// match a LivePatch's selector, and what follows for the rollout. Any firing
// match holds new starts; a match whose node label names a node fails that
// node's bake (bake.ts); a source that cannot be read, or that no one
// configured, holds too: the gate never lets a node start blind. Only the
// state Prometheus calls firing counts: a pending alert has not yet held its
// `for:` and may clear by itself. The reading is fetched elsewhere
// (alert-source.ts) and handed in, like the time.
import type {
  AlertGateSpec,
  AlertGateStatus,
  GateAlert,
  LivePatch,
} from '../api/generated/types.js';
import { clip, listSome } from '../api/listing.js';
import type { NodeName } from '../api/names.js';

/** One alert as the source lists it (Prometheus' /api/v1/alerts). */
export interface Alert {
  readonly labels: Readonly<Record<string, string>>;
  /** firing, pending (Prometheus), or inactive (some compatible sources). */
  readonly state: string;
  readonly activeAt?: string;
}

/** The source's last answer, as the poller holds it. */
export type AlertReading =
  | { readonly kind: 'notAsked' }
  | { readonly kind: 'alerts'; readonly alerts: readonly Alert[]; readonly at: number }
  | {
      readonly kind: 'failed';
      readonly error: string;
      /** The first failure of this run of failures. */
      readonly since: number;
      /** When the last good answer came, if one did. */
      readonly lastGood?: number;
    };

/**
 * What the controller knows of its alert source: none, or its interval and
 * last reading; and the gate of a LivePatch without spec.rollout.alertGate
 * (the chart's default), if any. A default without a source holds every
 * LivePatch it gates, as a gate asked of a controller without one does.
 */
export type AlertSourceView = { readonly defaultGate?: AlertGateSpec } & (
  | { readonly kind: 'none' }
  | { readonly kind: 'source'; readonly intervalMs: number; readonly reading: AlertReading }
);

/** A reading older than this many intervals is no reading: the poller must have stopped. */
export const STALE_INTERVALS = 3;
const LISTED_ALERTS = 10;
const DEFAULT_NODE_LABELS = ['node', 'instance'];
/** status.alertGate.message's and an alert name's maxLength. */
const STATUS_MESSAGE_MAX = 1024;
const ALERT_NAME_MAX = 256;

/** A firing alert that matched, with the node it names, if it names one. */
export interface MatchedAlert {
  readonly name: string;
  readonly node?: NodeName;
  readonly activeAt?: string;
}

export type GateVerdict =
  | { readonly kind: 'open'; readonly status: AlertGateStatus }
  | {
      readonly kind: 'hold';
      readonly reason: 'AlertsFiring' | 'AlertSourceUnreachable' | 'AlertGateNotConfigured';
      readonly message: string;
      readonly status: AlertGateStatus;
      /** Matching firing alerts by the node they name (AlertsFiring only). */
      readonly byNode: ReadonlyMap<NodeName, readonly string[]>;
    };

type Matcher = (labels: Readonly<Record<string, string>>) => boolean;

const MATCHER = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/;

/** Firing alerts by the node they name, which fail that node's bake: none unless the gate holds on alerts. */
export function namedByAlerts(
  verdict: GateVerdict | undefined,
): ReadonlyMap<NodeName, readonly string[]> | undefined {
  return verdict?.kind === 'hold' ? verdict.byNode : undefined;
}

/** One `name op "value"` matcher, or why it is not one. */
export function parseMatcher(text: string): Matcher | string {
  const m = MATCHER.exec(text);
  if (!m) return `"${text}" is not a matcher (name="value", name!="value", name=~"re", name!~"re")`;
  const [, name = '', op, quoted = ''] = m;
  const value = quoted.replace(/\\(.)/g, '$1');
  // A missing label is the empty string, as in PromQL.
  const of = (labels: Readonly<Record<string, string>>): string => labels[name] ?? '';
  if (op === '=') return (l) => of(l) === value;
  if (op === '!=') return (l) => of(l) !== value;
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${value})$`);
  } catch (err) {
    return `"${text}": ${(err as Error).message}`;
  }
  return op === '=~' ? (l) => re.test(of(l)) : (l) => !re.test(of(l));
}

/** The selector of a gate as one predicate, or what is wrong with it. */
export function gateSelector(gate: AlertGateSpec): Matcher | string {
  const parsed = (gate.matchers ?? []).map(parseMatcher);
  const bad = parsed.find((p): p is string => typeof p === 'string');
  if (bad !== undefined) return `spec.rollout.alertGate.matchers: ${bad}`;
  const matchers = parsed.filter((p): p is Matcher => typeof p !== 'string');
  const labels = Object.entries(gate.matchLabels ?? {});
  return (l) => labels.every(([k, v]) => l[k] === v) && matchers.every((m) => m(l));
}

/** The gate that applies to a LivePatch: its own, else the chart's default; undefined when ungated. */
export function gateOf(lp: LivePatch, source: AlertSourceView): AlertGateSpec | undefined {
  const own = lp.spec.rollout.alertGate;
  const gate = own ?? source.defaultGate;
  return gate?.enabled ? gate : undefined;
}

/** The node an alert names by one of the gate's node labels: "node-1" or "node-1:9100". */
function namedNode(
  alert: Alert,
  nodeLabels: readonly string[],
  isNode: (name: string) => boolean,
): NodeName | undefined {
  for (const label of nodeLabels) {
    const value = alert.labels[label];
    if (value === undefined) continue;
    if (isNode(value)) return value as NodeName;
    const host = value.replace(/:\d+$/, '');
    if (isNode(host)) return host as NodeName;
  }
  return undefined;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function describe(a: MatchedAlert): string {
  return a.node ? `${a.name} (node ${a.node})` : a.name;
}

function hold(
  reason: Extract<GateVerdict, { kind: 'hold' }>['reason'],
  state: AlertGateStatus['state'],
  message: string,
  extra: Partial<AlertGateStatus> = {},
  byNode: ReadonlyMap<NodeName, readonly string[]> = new Map(),
): GateVerdict {
  return {
    kind: 'hold',
    reason,
    message,
    byNode,
    status: { state, message: clip(message, STATUS_MESSAGE_MAX), ...extra },
  };
}

function staleness(source: Extract<AlertSourceView, { kind: 'source' }>, now: number): string {
  const r = source.reading;
  if (r.kind === 'notAsked') return 'the alert source has not answered yet';
  if (r.kind === 'failed') {
    const last = r.lastGood ? `; last answer ${iso(r.lastGood)}` : '';
    return `the alert source fails since ${iso(r.since)}: ${r.error}${last}`;
  }
  const age = Math.round((now - r.at) / 1000);
  return `the alert source's last answer is ${age}s old (over ${STALE_INTERVALS} intervals)`;
}

/**
 * The gate's verdict for one LivePatch, or undefined when it is not gated (or
 * disabled or being deleted: nothing holds those). `isNode` tells which alert
 * label values name a node of the cluster.
 */
export function judgeGate(
  lp: LivePatch,
  source: AlertSourceView,
  isNode: (name: string) => boolean,
  now: number,
): GateVerdict | undefined {
  const gate = gateOf(lp, source);
  if (!gate || lp.spec.state === 'Disabled' || lp.metadata.deletionTimestamp) return undefined;
  const held = 'no new node starts';
  if (source.kind === 'none')
    return hold(
      'AlertGateNotConfigured',
      'NotConfigured',
      `${lp.spec.rollout.alertGate ? 'spec.rollout.alertGate asks for' : "the chart's default gate (alertGate.default) sets"} an alert gate, but the controller has no alert source (the chart value alertGate.url, flag --alert-source-url): ${held}`,
    );
  const select = gateSelector(gate);
  if (typeof select === 'string')
    return hold('AlertGateNotConfigured', 'NotConfigured', `${select}: ${held}`);
  const r = source.reading;
  if (r.kind !== 'alerts' || now - r.at > STALE_INTERVALS * source.intervalMs)
    return hold(
      'AlertSourceUnreachable',
      'Unreachable',
      `${staleness(source, now)}: ${held} until it answers`,
      r.kind === 'alerts' ? { checkedAt: iso(r.at) } : {},
    );
  const nodeLabels = gate.nodeLabels;
  const matched = r.alerts
    .filter((a) => a.state === 'firing' && select(a.labels))
    .map((a): MatchedAlert => {
      const node = namedNode(a, nodeLabels, isNode);
      return {
        name: a.labels['alertname'] ?? '(no alertname)',
        ...(node ? { node } : {}),
        ...(a.activeAt ? { activeAt: a.activeAt } : {}),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || (a.node ?? '').localeCompare(b.node ?? ''));
  const checkedAt = iso(r.at);
  if (!matched.length)
    return {
      kind: 'open',
      status: { state: 'Clear', firing: 0, checkedAt, message: 'no matching alert fires' },
    };
  const byNode = new Map<NodeName, string[]>();
  for (const a of matched) if (a.node) byNode.set(a.node, [...(byNode.get(a.node) ?? []), a.name]);
  const alerts: GateAlert[] = matched
    .slice(0, LISTED_ALERTS)
    .map((a) => ({ ...a, name: clip(a.name, ALERT_NAME_MAX) }));
  return hold(
    'AlertsFiring',
    'Firing',
    `${matched.length} matching alert(s) firing: ${listSome(matched.map(describe), 5)}; ${held} until they clear`,
    { alerts, firing: matched.length, checkedAt },
    byNode,
  );
}

const isStrings = (x: unknown): x is string[] =>
  Array.isArray(x) && x.every((s) => typeof s === 'string');
const isStringMap = (x: unknown): x is Record<string, string> =>
  typeof x === 'object' &&
  x !== null &&
  !Array.isArray(x) &&
  Object.values(x).every((s) => typeof s === 'string');

/** The fields of a gate read from JSON, with the CRD's defaults, or what is wrong. */
function gateFields(o: Record<string, unknown>): AlertGateSpec | string {
  const { enabled = true, matchLabels = {}, matchers = [], nodeLabels = DEFAULT_NODE_LABELS } = o;
  if (typeof enabled !== 'boolean') return 'enabled must be true or false';
  if (!isStringMap(matchLabels)) return 'matchLabels must map label names to strings';
  if (!isStrings(matchers)) return 'matchers must be a list of strings';
  if (!isStrings(nodeLabels)) return 'nodeLabels must be a list of strings';
  return { enabled, matchLabels, matchers, nodeLabels };
}

/**
 * The chart's default gate (flag --alert-gate-default), in the shape of
 * spec.rollout.alertGate, or what is wrong with it. The API server checks a
 * LivePatch's own gate; this one only we read, so it is checked here.
 */
export function parseDefaultGate(json: string): AlertGateSpec | string {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  const unknownKey = Object.keys(o).find(
    (k) => !['enabled', 'matchLabels', 'matchers', 'nodeLabels'].includes(k),
  );
  if (unknownKey) return `unknown field ${unknownKey} (enabled, matchLabels, matchers, nodeLabels)`;
  const gate = gateFields(o);
  if (typeof gate === 'string') return gate;
  const select = gateSelector(gate);
  return typeof select === 'string' ? select : gate;
}
