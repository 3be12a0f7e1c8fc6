import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import { RandomIdGenerator, SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SAMPLING_SALT,
  inclusionHash,
  inclusionProbability,
  isSelected,
} from '../../src/select/index.ts';
import { ScorecarError } from '../../src/util/errors.ts';

const N = 20_000;
const SALT = DEFAULT_SAMPLING_SALT;
const RATES = [0.01, 0.1, 0.5];

/** Reproducible "random 16 bytes": SHA-256 of a seed and a counter, truncated. */
function randomIds(n: number, seed: string): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push(createHash('sha256').update(`${seed}:${i}`).digest('hex').slice(0, 32));
  return ids;
}

/** |fraction - rate| within 4 binomial standard deviations. */
function expectNearRate(selected: number, n: number, rate: number): void {
  const sigma = Math.sqrt((rate * (1 - rate)) / n);
  const fraction = selected / n;
  expect(
    Math.abs(fraction - rate),
    `fraction ${fraction} vs rate ${rate} (n=${n}, sigma=${sigma})`,
  ).toBeLessThan(4 * sigma);
}

function selectedSet(ids: readonly string[], rate: number, salt = SALT): Set<string> {
  return new Set(ids.filter((id) => isSelected(id, rate, salt)));
}

// Independent BigInt statement of the documented algorithm: FNV-1a 64 over salt || id, fmix64.
const MASK = (1n << 64n) - 1n;
function referenceHash(idHex: string, salt: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.concat([Buffer.from(salt, 'utf8'), Buffer.from(idHex, 'hex')])) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & MASK;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK;
  h ^= h >> 33n;
  return h;
}

describe('inclusionHash', () => {
  it('is FNV-1a 64 over salt || id bytes followed by fmix64', () => {
    const ids = randomIds(2_000, 'reference');
    for (const [i, id] of ids.entries()) {
      const salt = ['', SALT, 'another salt', 'ünïcode'][i % 4]!;
      expect(inclusionHash(id, salt)).toBe(referenceHash(id, salt));
    }
    // Extremes of the id space.
    for (const id of ['0'.repeat(32), 'f'.repeat(32), '00000000000000000000000000000001']) {
      expect(inclusionHash(id, SALT)).toBe(referenceHash(id, SALT));
    }
  });

  it('reads hex case-insensitively and refuses what is not an id', () => {
    const id = randomIds(1, 'case')[0]!;
    expect(inclusionHash(id.toUpperCase(), SALT)).toBe(inclusionHash(id, SALT));
    for (const bad of ['', 'abc', 'zz'.repeat(16), `${'0'.repeat(31)}g`]) {
      let caught: unknown;
      try {
        inclusionHash(bad, SALT);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ScorecarError);
      expect((caught as ScorecarError).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('keeps per-salt state apart when salts alternate', () => {
    const ids = randomIds(500, 'alternate');
    const a = ids.map((id) => inclusionHash(id, 'salt-a'));
    const b = ids.map((id) => inclusionHash(id, 'salt-b'));
    const interleaved = ids.map((id, i) => [inclusionHash(id, 'salt-a'), inclusionHash(ids[i]!, 'salt-b')]);
    expect(interleaved.map((p) => p[0])).toEqual(a);
    expect(interleaved.map((p) => p[1])).toEqual(b);
    expect(a).not.toEqual(b);
  });
});

describe('isSelected', () => {
  it('never selects at rate <= 0 or NaN and always at rate >= 1', () => {
    for (const id of randomIds(200, 'edges')) {
      expect(isSelected(id, 0, SALT)).toBe(false);
      expect(isSelected(id, -0.5, SALT)).toBe(false);
      expect(isSelected(id, Number.NaN, SALT)).toBe(false);
      expect(isSelected(id, 1, SALT)).toBe(true);
      expect(isSelected(id, 1.5, SALT)).toBe(true);
    }
  });

  it('compares the hash with rate * 2^64 exactly', () => {
    const ids = randomIds(3_000, 'exact');
    for (const [i, id] of ids.entries()) {
      const rate = ((i * 7919) % 1000) / 1000 + 1e-4;
      if (rate >= 1) continue;
      // rate * 2^64 is exact in binary floating point (it may have a fraction for tiny rates);
      // for an integer hash, hash < T iff hash < ceil(T).
      const scaled = rate * 2 ** 32;
      const whole = Math.floor(scaled);
      const threshold = (BigInt(whole) << 32n) + BigInt(Math.ceil((scaled - whole) * 2 ** 32));
      expect(isSelected(id, rate, SALT)).toBe(referenceHash(id, SALT) < threshold);
    }
    // Thresholds right at the hash: rate k / 2^53 with k = the hash's top 53 bits puts the
    // threshold at the hash with its low 11 bits cleared (<= hash: not selected); one step up
    // puts it above the hash (selected).
    for (const id of ids.slice(0, 200)) {
      const h = inclusionHash(id, SALT);
      const k = Number(h >> 11n);
      expect(isSelected(id, k / 2 ** 53, SALT)).toBe(false);
      expect(isSelected(id, (k + 1) / 2 ** 53, SALT)).toBe(true);
    }
  });

  it('selects each rate within 4 sigma over 20,000 random trace ids, nested across rates', () => {
    const ids = randomIds(N, 'uniformity');
    const sets = RATES.map((rate) => selectedSet(ids, rate));
    for (const [i, rate] of RATES.entries()) expectNearRate(sets[i]!.size, N, rate);
    const [s001, s01, s05] = sets as [Set<string>, Set<string>, Set<string>];
    for (const id of s01) expect(s05.has(id)).toBe(true);
    for (const id of s001) expect(s01.has(id)).toBe(true);
  });

  it('selects the identical set in a second process', async () => {
    const ids = randomIds(N, 'two-processes');
    const here = RATES.map((rate) => ids.filter((id) => isSelected(id, rate, SALT)));
    const dir = mkdtempSync(join(tmpdir(), 'scorecar-sampling-'));
    try {
      const moduleUrl = pathToFileURL(resolve('src/select/index.ts')).href;
      const script = join(dir, 'select.ts');
      writeFileSync(
        script,
        [
          `import { isSelected } from ${JSON.stringify(moduleUrl)};`,
          "import { readFileSync } from 'node:fs';",
          'const { ids, rates, salt } = JSON.parse(readFileSync(0, "utf8"));',
          'const out = rates.map((r) => ids.filter((id) => isSelected(id, r, salt)));',
          'process.stdout.write(JSON.stringify(out));',
        ].join('\n'),
      );
      const child = spawn(
        resolve('node_modules/.bin/node'),
        ['--disable-warning=ExperimentalWarning', script],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.stdin.end(JSON.stringify({ ids, rates: RATES, salt: SALT }));
      const code = await new Promise<number | null>((res) => child.on('close', res));
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const there = JSON.parse(stdout) as string[][];
      expect(there).toEqual(here);
      expect(there[2]!.length).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a different salt gives an independent sample', () => {
    const ids = randomIds(N, 'salts');
    const a = selectedSet(ids, 0.5, 'salt-one');
    const b = selectedSet(ids, 0.5, 'salt-two');
    let both = 0;
    for (const id of a) if (b.has(id)) both++;
    expectNearRate(both, N, 0.25);
  });

  it('is not fooled by ids that differ only in their last bytes (sequential ids)', () => {
    // FNV-1a alone gives every one of these the same decision; the finaliser fixes that.
    const ids = Array.from({ length: N }, (_, i) => (i + 1).toString(16).padStart(32, '0'));
    for (const rate of RATES) expectNearRate(selectedSet(ids, rate).size, N, rate);
    // Neighbours decide independently: P(same decision as the next id) ~ 1/2 at rate 0.5.
    let same = 0;
    for (let i = 1; i < N; i++)
      if (isSelected(ids[i]!, 0.5, SALT) === isSelected(ids[i - 1]!, 0.5, SALT)) same++;
    expectNearRate(same, N - 1, 0.5);
  });
});

describe('independence from an upstream OpenTelemetry head sampler', () => {
  // Called through the SDK's Sampler interface, as a tracer provider calls it for a root span.
  const head: Sampler = new TraceIdRatioBasedSampler(0.1);
  const keptByHead = (id: string): boolean =>
    head.shouldSample(ROOT_CONTEXT, id, 'span', SpanKind.INTERNAL, {}, []).decision ===
    SamplingDecision.RECORD_AND_SAMPLED;

  it('a 0.5 scorer still selects about half of the random ids a 10% TraceIdRatioBasedSampler kept', () => {
    const kept: string[] = [];
    let seed = 0;
    while (kept.length < N) {
      for (const id of randomIds(50_000, `head-${seed++}`)) if (keptByHead(id)) kept.push(id);
    }
    const sample = kept.slice(0, N);
    expectNearRate(selectedSet(sample, 0.5).size, N, 0.5);
    expectNearRate(selectedSet(sample, 0.1).size, N, 0.1);
  });

  it('likewise for ids from the SDK RandomIdGenerator, before and after head sampling', () => {
    const gen = new RandomIdGenerator();
    const all = Array.from({ length: N }, () => gen.generateTraceId());
    for (const rate of RATES) expectNearRate(selectedSet(all, rate).size, N, rate);
    const kept: string[] = [];
    while (kept.length < N) {
      const id = gen.generateTraceId();
      if (keptByHead(id)) kept.push(id);
    }
    expect(kept.every(keptByHead)).toBe(true);
    expectNearRate(selectedSet(kept, 0.5).size, N, 0.5);
  });
});

describe('inclusionProbability', () => {
  it('is the rate clamped to [0, 1]', () => {
    expect(inclusionProbability(0.25)).toBe(0.25);
    expect(inclusionProbability(1)).toBe(1);
    expect(inclusionProbability(3)).toBe(1);
    expect(inclusionProbability(0)).toBe(0);
    expect(inclusionProbability(-1)).toBe(0);
    expect(inclusionProbability(Number.NaN)).toBe(0);
  });
});
