// The options `scorecar start` and `scorecar worker` share, and how a bad config ends them.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadRunConfig, parseRunArgs } from '../../src/cli/run-args.ts';
import { ConfigError } from '../../src/config/index.ts';

const HELP = 'Usage: scorecar test\n';

function captured(): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err.push(String(s));
    return true;
  });
  return { out, err };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('scorecar start / worker options', () => {
  it('reads --config and --shutdown-timeout, with 10 s by default', () => {
    captured();
    expect(parseRunArgs('start', ['--config', 'a.yaml', '--shutdown-timeout', '2500'], HELP)).toEqual({
      configFile: 'a.yaml',
      shutdownMs: 2500,
    });
    expect(parseRunArgs('start', ['-c', 'b.yaml'], HELP)).toEqual({ configFile: 'b.yaml', shutdownMs: 10_000 });
  });

  it('refuses a timeout that is not milliseconds, and unknown options, with exit 2 and the usage', () => {
    const { err } = captured();
    for (const bad of ['soon', '-5', '1.5', '']) {
      expect(parseRunArgs('worker', ['--shutdown-timeout', bad], HELP), bad).toBe(2);
    }
    expect(parseRunArgs('worker', ['--bogus'], HELP)).toBe(2);
    expect(err.join('')).toContain("scorecar worker: --shutdown-timeout expects milliseconds, got 'soon'");
    expect(err.join('')).toContain('Usage: scorecar test');
  });

  it('prints the help with exit 0', () => {
    const { out } = captured();
    expect(parseRunArgs('start', ['--help'], HELP)).toBe(0);
    expect(out.join('')).toBe(HELP);
  });

  it('gives 78 (EX_CONFIG) with every key path for a bad config or a failed check', () => {
    const { err } = captured();
    expect(loadRunConfig({ text: 'bogus: 1\nassembler: {settleMs: -1}', env: {} })).toBe(78);
    expect(err.join('')).toContain('bogus');
    expect(err.join('')).toContain('assembler.settleMs');
    const checked = loadRunConfig({ text: '', env: {} }, () => {
      throw new ConfigError([{ path: 'kafka.brokers', message: 'scorecar worker needs kafka.brokers' }], 'worker');
    });
    expect(checked).toBe(78);
    expect(err.join('')).toContain('kafka.brokers');
    const ok = loadRunConfig({ text: '', env: {} });
    expect(typeof ok).toBe('object');
  });
});
