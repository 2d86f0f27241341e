/**
 * One host's countermeasure plan from its findings (seed 004 §4.3: extract
 * the countermeasure from the security information and send it to the
 * host's agent). Findings often ask for the same thing (several advisories
 * fixed by one upgrade, two binaries of one source), so the plan merges:
 *
 * - upgrades: one per package (by name), to the highest version asked for
 *   (in the ecosystem's ordering);
 * - config changes: one per file, keys merged; two findings asking for
 *   different values of one key is a conflict, which goes to a person;
 * - commands: each distinct argv once, in the order first asked for;
 * - manual steps: each distinct instruction once.
 *
 * The automatic steps run in that order: upgrades, then config changes,
 * then commands (a restart after an upgrade). Each step says which findings
 * asked for it.
 */
import type { Countermeasure } from '../advisories/countermeasures.js';
import { schemeForEcosystem } from '../versions/scheme.js';
import { findingKey, type Finding } from './findings.js';

/** A merged step and the findings (by {@link findingKey}) that asked for it. @public */
export interface PlannedStep {
  /** The merged step. */
  readonly step: Countermeasure;
  /** Keys of the findings that asked for it. */
  readonly because: readonly string[];
}

/** One host's plan. @public */
export interface HostPlan {
  /** The host the plan is for. */
  readonly hostId: string;
  /** Steps an agent can run, in order. */
  readonly automatic: readonly PlannedStep[];
  /** Steps for a person (manual instructions, conflicts). */
  readonly manual: readonly PlannedStep[];
}

/**
 * Merge one host's findings into a plan. `ecosystem` orders upgrade
 * versions (default: the first vulnerability finding's).
 * @public
 */
export function planCountermeasures(hostId: string, findings: readonly Finding[], ecosystem?: string): HostPlan {
  const eco = ecosystem ?? findings.find((f) => f.kind === 'vulnerable')?.ecosystem;
  const scheme = eco === undefined ? undefined : schemeForEcosystem(eco);
  const upgrades = new Map<string, { version: string | undefined; because: string[] }>();
  const configs = new Map<string, { set: Record<string, string>; because: string[] }>();
  const commands = new Map<string, { argv: readonly string[]; because: string[] }>();
  const manual = new Map<string, string[]>();
  const addManual = (text: string, why: string) => {
    const list = manual.get(text);
    if (list) {
      if (!list.includes(why)) list.push(why);
    } else manual.set(text, [why]);
  };
  for (const f of findings) {
    if (f.hostId !== hostId) continue;
    const why = findingKey(f);
    for (const s of f.countermeasure) {
      switch (s.kind) {
        case 'upgrade': {
          const u = upgrades.get(s.package);
          if (!u) {
            upgrades.set(s.package, { version: s.version, because: [why] });
            break;
          }
          if (!u.because.includes(why)) u.because.push(why);
          if (s.version === undefined) break;
          if (u.version === undefined || higher(scheme, s.version, u.version)) u.version = s.version;
          break;
        }
        case 'config': {
          let c = configs.get(s.path);
          if (!c) configs.set(s.path, (c = { set: {}, because: [] }));
          if (!c.because.includes(why)) c.because.push(why);
          for (const [k, v] of Object.entries(s.set)) {
            const had = c.set[k];
            if (had === undefined) c.set[k] = v;
            else if (had !== v) addManual(`Conflicting settings for ${k} in ${s.path} on ${hostId}: "${had}" and "${v}" were both asked for; "${had}" is planned, decide which must hold.`, why);
          }
          break;
        }
        case 'command': {
          const k = JSON.stringify(s.argv);
          const c = commands.get(k);
          if (c) {
            if (!c.because.includes(why)) c.because.push(why);
          } else commands.set(k, { argv: s.argv, because: [why] });
          break;
        }
        case 'manual':
          addManual(s.instructions, why);
          break;
      }
    }
  }
  const automatic: PlannedStep[] = [
    ...[...upgrades].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([pkg, u]) => ({
      step: u.version === undefined ? { kind: 'upgrade' as const, package: pkg } : { kind: 'upgrade' as const, package: pkg, version: u.version },
      because: u.because,
    })),
    ...[...configs].map(([path, c]) => ({ step: { kind: 'config' as const, path, set: c.set }, because: c.because })),
    ...[...commands.values()].map((c) => ({ step: { kind: 'command' as const, argv: c.argv }, because: c.because })),
  ];
  return {
    hostId,
    automatic,
    manual: [...manual].map(([instructions, because]) => ({ step: { kind: 'manual' as const, instructions }, because })),
  };
}

/** True when `a` is a higher version than `b` (by `scheme`; unparsable or unknown scheme: not higher). */
function higher(scheme: ReturnType<typeof schemeForEcosystem>, a: string, b: string): boolean {
  if (!scheme) return false;
  try {
    return scheme.compare(scheme.parse(a), scheme.parse(b)) > 0;
  } catch {
    return false;
  }
}
