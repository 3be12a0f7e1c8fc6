// Lifecycle rules that do not need the store: name and id checks, sample-rate ranges, filter
// normalisation, status derivation and the canonical JSON used to compare definitions.
import { ScorecarError } from '../util/index.ts';
import { EXPERIMENT_ID_PATTERN, MAX_FILTER_LENGTH, SCORER_NAME_PATTERN, type ScorerStatus } from '../definitions/index.ts';

export function checkScorerName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !SCORER_NAME_PATTERN.test(name)) {
    throw new ScorecarError(
      'INVALID_ARGUMENT',
      `${field}: invalid scorer name ${JSON.stringify(name)}: expected 1-64 characters, a letter or digit ` +
        'first, then letters, digits, "_", "." or "-"',
      { details: { field } },
    );
  }
  return name;
}

export function checkExperimentId(id: unknown, field = 'experimentId'): string {
  if (typeof id !== 'string' || !EXPERIMENT_ID_PATTERN.test(id)) {
    throw new ScorecarError(
      'INVALID_ARGUMENT',
      `${field}: invalid experiment id ${JSON.stringify(id)}: expected 1-128 characters, a letter or digit ` +
        'first, then letters, digits, "_", ".", ":", "@", "/" or "-"',
      { details: { field } },
    );
  }
  return id;
}

/** `start` needs 0 < rate <= 1; `update` accepts 0 too (= stop). */
export function checkSampleRate(rate: unknown, opts: { allowZero: boolean; field?: string }): number {
  const field = opts.field ?? 'sampleRate';
  const ok =
    typeof rate === 'number' && Number.isFinite(rate) && rate <= 1 && (opts.allowZero ? rate >= 0 : rate > 0);
  if (!ok) {
    throw new ScorecarError(
      'INVALID_ARGUMENT',
      `${field}: expected a number ${opts.allowZero ? 'in [0, 1]' : 'in (0, 1] (use stop to set it to 0)'}, got ${JSON.stringify(rate)}`,
      { details: { field } },
    );
  }
  return rate;
}

/** Blank filter strings mean "no filter"; null too. Too long ones are refused. */
export function normaliseFilter(filter: string | null, field = 'filterString'): string | null {
  if (filter === null) return null;
  const t = filter.trim();
  if (t === '') return null;
  if (t.length > MAX_FILTER_LENGTH) {
    throw new ScorecarError('INVALID_FILTER', `${field}: longer than ${MAX_FILTER_LENGTH} characters`, {
      details: { field, position: MAX_FILTER_LENGTH },
    });
  }
  return t;
}

/**
 * `registered` until the first start, `active` while the rate is > 0, `stopped` once the rate
 * went back to 0 after having run (MLflow derives STARTED/STOPPED from the rate the same way).
 */
export function deriveStatus(sampleRate: number, everStarted: boolean): ScorerStatus {
  if (sampleRate > 0) return 'active';
  return everStarted ? 'stopped' : 'registered';
}

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so two
 * definitions that mean the same thing serialise to the same string (config-as-code compares
 * these to decide whether a new version is needed).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortKeys(x)));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
