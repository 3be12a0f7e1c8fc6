// The config loader: YAML + ${env} expansion + SCORECAR_<SECTION>__<KEY> overrides, every error
// with its key path at once, frozen defaults, and the sample config listing every key.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const ROOT = join(import.meta.dirname, '../..');

function issues(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig({ text, env });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => i.path);
    throw e;
  }
  throw new Error('expected the config to be refused');
}

describe('config loader', () => {
  it('the embedded defaults are frozen and what config/scorecar.yaml lists', () => {
    const defaults = loadConfig({ env: {} });
    expect(Object.isFrozen(defaults.assembler)).toBe(true);
    expect(defaults.assembler.onShutdown).toBe('complete');
    // The sample file states the defaults: loading it changes nothing but its examples.
    const sample = loadConfig({ file: join(ROOT, 'config/scorecar.yaml'), env: {} });
    expect({ ...sample, scorers: [] }).toEqual({ ...defaults, scorers: [] });
  });

  it('reports every problem with its key path, all at once', () => {
    expect(
      issues('receivers: {otlp: {http: {endpoint: "nope"}}}\nassembler: {settleMs: -1, onShutdown: later}\nbogus: 1\n'),
    ).toEqual(expect.arrayContaining(['receivers.otlp.http.endpoint', 'assembler.settleMs', 'assembler.onShutdown', '']));
  });

  it('expands env:NAME and NAME:-default references; a missing variable is an error at its path', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: config syntax, expanded by the loader
    const c = loadConfig({ text: 'exporters: {otlp: {endpoint: "${env:DOWN}", headers: {x: "${TOKEN:-anon}"}}}', env: { DOWN: 'http://c:4318' } });
    expect(c.exporters.otlp.endpoint).toBe('http://c:4318');
    expect(c.exporters.otlp.headers).toEqual({ x: 'anon' });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: config syntax, expanded by the loader
    expect(issues('admin: {token: "${env:NOPE}"}')).toEqual(['admin.token']);
  });

  it('SCORECAR_<SECTION>__<KEY> overrides one key, typed; SCORECAR_ADMIN_TOKEN is admin.token', () => {
    const c = loadConfig({
      text: 'assembler: {settleMs: 10}',
      env: { SCORECAR_ASSEMBLER__SETTLE_MS: '250', SCORECAR_ASSEMBLER__ON_SHUTDOWN: 'drop', SCORECAR_ADMIN_TOKEN: 's3cret' },
    });
    expect([c.assembler.settleMs, c.assembler.onShutdown, c.admin.token]).toEqual([250, 'drop', 's3cret']);
  });

  it('points at the line and column of a YAML syntax error', () => {
    expect(() => loadConfig({ text: 'a: [1, 2\nb: 3', env: {} })).toThrow(/YAML syntax error \(line \d+, column \d+\)/);
  });

  it('the README documents every top-level section of the config', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const section of Object.keys(loadConfig({ env: {} }))) expect(readme).toContain(`${section}`);
  });
});
