// The admin port against browsers, over real HTTP on loopback with the whole app (config keys
// admin.allowedHosts, admin.cors.allowedOrigins, admin.metricsAuth wired through `Scorecar`):
//  - DNS rebinding: a page whose name re-resolves to 127.0.0.1 sends its own name as Host; without
//    a token only loopback names (and admin.allowedHosts) are served, probes excepted.
//  - CSRF: a cross-origin "simple request" (no body, text/plain, a form) to a mutating route is
//    refused, so is any request with a foreign Origin or Sec-Fetch-Site; no CORS headers unless
//    configured. The SDK still works (it sends x-scorecar-request).
//  - /metrics follows the token unless admin.metricsAuth is none.
// Every refusal is checked against the registry: nothing was stopped, registered or deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scorer } from '../../src/definitions/index.ts';
import { ScorecarClient } from '../../src/sdk/index.ts';
import { type RawReply, rawRequest } from '../support/raw-http.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const send = rawRequest;

const codeOf = (r: RawReply): string | undefined => (r.json as { error?: { code?: string } } | undefined)?.error?.code;

const EXP = 'guarded';
const DEF = { type: 'code', source: '(ctx) => 1' };
const CSRF = { 'x-scorecar-request': '1' };
const JSON_CT = { 'content-type': 'application/json' };

/** The scorers of EXP as the registry holds them (read over loopback, the legitimate way). */
async function scorers(sc: TestScorecar, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const r = await send(sc.adminUrl, 'GET', `/api/v1/experiments/${EXP}/scorers`, headers);
  expect(r.status, r.text).toBe(200);
  return Object.fromEntries((r.json as { scorers: Scorer[] }).scorers.map((s) => [s.name, s.sampleRate]));
}

async function seed(sc: TestScorecar, headers: Record<string, string> = {}): Promise<void> {
  for (const name of ['victim', 'bystander']) {
    const reg = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers`, { ...headers, ...JSON_CT }, JSON.stringify({ name, definition: DEF }));
    expect(reg.status, reg.text).toBe(201);
    const st = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers/${name}/start`, { ...headers, ...JSON_CT }, '{"sampleRate":0.5}');
    expect(st.status, st.text).toBe(200);
  }
}

describe('without a token (the default): DNS rebinding and CSRF', () => {
  let sc: TestScorecar;
  let port: string;
  beforeAll(async () => {
    sc = await startScorecar('admin: {allowedHosts: ["scorecar.internal", "[fd00::5]"]}');
    port = new URL(sc.adminUrl).port;
    await seed(sc);
  });
  afterAll(async () => {
    await sc.stop();
  });

  const ACTIVE = { victim: 0.5, bystander: 0.5 };

  it('refuses a rebound Host on the API and /metrics with 403 HOST_NOT_ALLOWED, before anything runs', async () => {
    for (const host of [`rebind.attacker.example:${port}`, 'rebind.attacker.example', `localhost.attacker.example:${port}`, `127.0.0.1.nip.io:${port}`, `[::2]:${port}`]) {
      const h = { host };
      const calls: Array<[string, string, Record<string, string>, string?]> = [
        ['GET', '/api/v1/experiments', h],
        ['GET', `/api/v1/experiments/${EXP}/scorers`, h],
        ['POST', '/api/v1/scorers:stop-all', { ...h, ...JSON_CT, ...CSRF }, '{}'],
        ['POST', `/api/v1/experiments/${EXP}/scorers`, { ...h, ...JSON_CT }, JSON.stringify({ name: 'planted', definition: DEF })],
        ['DELETE', `/api/v1/experiments/${EXP}/scorers/victim`, { ...h, ...CSRF }],
        ['GET', '/metrics', h],
        ['GET', '/api/v1/openapi.json', h],
      ];
      for (const [method, path, headers, body] of calls) {
        const r = await send(sc.adminUrl, method, path, headers, body);
        expect(r.status, `${method} ${path} Host ${host}: ${r.text}`).toBe(403);
        expect(codeOf(r)).toBe('HOST_NOT_ALLOWED');
        // No registry or metrics content leaks into the refusal.
        expect(r.text).not.toMatch(/victim|scorecar_/);
      }
    }
    expect(await scorers(sc)).toEqual(ACTIVE);
  });

  it('serves loopback names with any port, the configured names, and probes whatever the Host', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LocalHost', 'scorecar.internal:8443', 'SCORECAR.internal', '[fd00::5]:4320']) {
      const r = await send(sc.adminUrl, 'GET', '/api/v1/experiments', { host });
      expect(r.status, `Host ${host}: ${r.text}`).toBe(200);
      expect((await send(sc.adminUrl, 'GET', '/metrics', { host })).status, `/metrics Host ${host}`).toBe(200);
    }
    for (const path of ['/healthz', '/readyz']) {
      const r = await send(sc.adminUrl, 'GET', path, { host: 'pod-10-0-0-7.attacker.example:4320' });
      expect(r.status, path).toBe(200);
    }
  });

  it('refuses cross-origin "simple requests" to mutating routes (no body, text/plain, a form) with 403 CROSS_SITE_REFUSED', async () => {
    const at = `/api/v1/experiments/${EXP}/scorers`;
    const simple: Array<[string, string, Record<string, string>, string?]> = [
      ['POST', '/api/v1/scorers:stop-all', {}],
      ['POST', `${at}:stop-all`, {}],
      ['POST', '/api/v1/scorers:stop-all', { 'content-type': 'text/plain' }, ''],
      ['POST', `${at}/victim/stop`, { 'content-type': 'application/x-www-form-urlencoded' }, ''],
      ['POST', `${at}/victim/stop`, { 'content-type': 'multipart/form-data; boundary=x' }, '--x--\r\n'],
      ['POST', at, { 'content-type': 'text/plain' }, JSON.stringify({ name: 'planted', definition: DEF })],
      ['PATCH', `${at}/victim`, { 'content-type': 'text/plain' }, '{"sampleRate":0}'],
      ['DELETE', `${at}/victim`, {}],
      ['DELETE', `${at}/bystander?version=all`, { 'content-type': 'text/plain' }],
    ];
    for (const [method, path, headers, body] of simple) {
      // As a browser on another site sends them: with an Origin, and without one (no-cors).
      const asSent: Array<Record<string, string>> = [{}, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }];
      for (const extra of asSent) {
        const r = await send(sc.adminUrl, method, path, { ...headers, ...extra }, body);
        expect(r.status, `${method} ${path} ${JSON.stringify(headers)} ${JSON.stringify(extra)}: ${r.text}`).toBe(403);
        expect(codeOf(r)).toBe('CROSS_SITE_REFUSED');
        expect(r.headers['access-control-allow-origin']).toBeUndefined();
      }
    }
    expect(await scorers(sc)).toEqual(ACTIVE);
  });

  it('refuses a foreign Origin or Sec-Fetch-Site even with the header or a JSON body; same-origin passes', async () => {
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: `http://localhost:${Number(port) + 1}` }, // another local app: same site, not same origin
      { origin: 'null' }, // sandboxed iframes, file://
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const h of foreign) {
      const stop = await send(sc.adminUrl, 'POST', '/api/v1/scorers:stop-all', { ...h, ...JSON_CT, ...CSRF }, '{}');
      expect(stop.status, `${JSON.stringify(h)}: ${stop.text}`).toBe(403);
      expect(codeOf(stop)).toBe('CROSS_SITE_REFUSED');
      // A preflight from there gets no CORS grant either (no CORS configured: none sent, ever).
      const pre = await send(sc.adminUrl, 'OPTIONS', '/api/v1/scorers:stop-all', { ...h, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-scorecar-request' });
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      expect(pre.status).toBeGreaterThanOrEqual(400);
    }
    expect(await scorers(sc)).toEqual(ACTIVE);
    // Same-origin (what an admin UI served from this port would send), and non-browser clients.
    const same = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers/bystander/stop`, { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', ...CSRF });
    expect(same.status, same.text).toBe(200);
    expect(same.headers['access-control-allow-origin']).toBeUndefined();
    expect(await scorers(sc)).toEqual({ victim: 0.5, bystander: 0 });
    const restart = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers/bystander/start`, JSON_CT, '{"sampleRate":0.5}');
    expect(restart.status).toBe(200);
  });

  it('the SDK (and the CLI on it) still stops, deletes and kills: it sends x-scorecar-request', async () => {
    const client = new ScorecarClient({ url: sc.adminUrl, experimentId: EXP });
    expect((await client.stopScorer({ name: 'victim' })).sampleRate).toBe(0);
    expect((await client.stopAll()).map((s) => s.name)).toEqual(['bystander']);
    await client.registerScorer({ name: 'temp', definition: DEF });
    expect(await client.deleteScorer({ name: 'temp' })).toMatchObject({ deletedVersions: [1], nameRemoved: true });
    expect((await client.startScorer({ name: 'victim', sampleRate: 0.5 })).sampleRate).toBe(0.5);
    expect((await client.stopAll({ allExperiments: true })).map((s) => s.name)).toEqual(['victim']);
    await seed(sc);
  });
});

describe('with a token', () => {
  const TOKEN = 'hardening-token-0123456789';
  const AUTH = { authorization: `Bearer ${TOKEN}` };

  it('does not restrict Host unless admin.allowedHosts is set; /metrics needs the token (metricsAuth: token)', async () => {
    const sc = await startScorecar(`admin: {token: "${TOKEN}"}`);
    try {
      await seed(sc, AUTH);
      // A name the operator put in front (a load balancer, a service name): served with the token.
      const any = await send(sc.adminUrl, 'GET', '/api/v1/experiments', { ...AUTH, host: 'scorecar.prod.example:443' });
      expect(any.status, any.text).toBe(200);
      // /metrics names experiments, scorers and models: the token guards it.
      const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }];
      for (const h of wrong) {
        const m = await send(sc.adminUrl, 'GET', '/metrics', h);
        expect(m.status, JSON.stringify(h)).toBe(401);
        expect(codeOf(m)).toBe('UNAUTHENTICATED');
        expect(m.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(m.text).not.toContain(EXP);
      }
      const m = await send(sc.adminUrl, 'GET', '/metrics', AUTH);
      expect(m.status).toBe(200);
      expect(m.text).toContain(`scorecar_registry_active_scorers{experiment="${EXP}"} 2`);
      // Probes stay open.
      expect((await send(sc.adminUrl, 'GET', '/healthz')).status).toBe(200);
      expect((await send(sc.adminUrl, 'GET', '/readyz')).status).toBe(200);
      // The OpenAPI document says so: /metrics is under bearerAuth and answers 401.
      const doc = (await send(sc.adminUrl, 'GET', '/api/v1/openapi.json', AUTH)).json as { paths: Record<string, { get: { security?: unknown; responses: Record<string, unknown> } }> };
      expect(doc.paths['/metrics']!.get.security).toBeUndefined();
      expect(Object.keys(doc.paths['/metrics']!.get.responses).sort()).toEqual(['200', '401']);
      expect(doc.paths['/healthz']!.get.security).toEqual([]);
      // A token does not make a cross-origin simple request acceptable.
      const csrf = await send(sc.adminUrl, 'POST', '/api/v1/scorers:stop-all', { ...AUTH, 'content-type': 'text/plain' }, '');
      expect(codeOf(csrf)).toBe('CROSS_SITE_REFUSED');
      expect(await scorers(sc, AUTH)).toEqual({ victim: 0.5, bystander: 0.5 });
    } finally {
      await sc.stop();
    }
  });

  it('admin.metricsAuth: none leaves /metrics open to scrapers; admin.allowedHosts restricts Host even with the token', async () => {
    const sc = await startScorecar(`admin: {token: "${TOKEN}", metricsAuth: none, allowedHosts: ["scorecar.prod.example"]}`);
    try {
      await seed(sc, AUTH);
      const m = await send(sc.adminUrl, 'GET', '/metrics');
      expect(m.status).toBe(200);
      expect(m.text).toContain(`scorecar_registry_active_scorers{experiment="${EXP}"} 2`);
      expect((await send(sc.adminUrl, 'GET', '/api/v1/experiments')).status).toBe(401);
      const listed = await send(sc.adminUrl, 'GET', '/api/v1/experiments', { ...AUTH, host: 'scorecar.prod.example' });
      expect(listed.status, listed.text).toBe(200);
      for (const path of ['/api/v1/experiments', '/metrics']) {
        const r = await send(sc.adminUrl, 'GET', path, { ...AUTH, host: 'elsewhere.example' });
        expect(r.status, path).toBe(403);
        expect(codeOf(r)).toBe('HOST_NOT_ALLOWED');
      }
      expect((await send(sc.adminUrl, 'GET', '/healthz', { host: 'elsewhere.example' })).status).toBe(200);
      const doc = (await send(sc.adminUrl, 'GET', '/api/v1/openapi.json', AUTH)).json as { paths: Record<string, { get: { security?: unknown; responses: Record<string, unknown> } }> };
      expect(doc.paths['/metrics']!.get.security).toEqual([]);
      expect(Object.keys(doc.paths['/metrics']!.get.responses).sort()).toEqual(['200', '403']);
    } finally {
      await sc.stop();
    }
  });
});

describe('admin.cors.allowedOrigins', () => {
  it('grants exactly the listed origins: preflight, then the call, with CORS headers; others refused without them', async () => {
    const DASH = 'https://dash.example:8443';
    const sc = await startScorecar(`admin: {cors: {allowedOrigins: ["${DASH}"]}}`);
    try {
      await seed(sc);
      const pre = await send(sc.adminUrl, 'OPTIONS', `/api/v1/experiments/${EXP}/scorers/victim/stop`, {
        origin: DASH,
        'sec-fetch-site': 'cross-site',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-scorecar-request',
      });
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe(DASH);
      expect(String(pre.headers['access-control-allow-headers'])).toContain('x-scorecar-request');
      expect(String(pre.headers['access-control-allow-methods'])).toContain('POST');
      const stop = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers/victim/stop`, { origin: DASH, 'sec-fetch-site': 'cross-site', ...CSRF });
      expect(stop.status, stop.text).toBe(200);
      expect(stop.headers['access-control-allow-origin']).toBe(DASH);
      expect(String(stop.headers.vary)).toMatch(/origin/i);
      // The allowed origin still needs the CSRF header (a form post from it is refused too).
      const form = await send(sc.adminUrl, 'POST', `/api/v1/experiments/${EXP}/scorers/bystander/stop`, { origin: DASH, 'content-type': 'application/x-www-form-urlencoded' }, '');
      expect(codeOf(form)).toBe('CROSS_SITE_REFUSED');
      // Any other origin: refused, no grant.
      const other = await send(sc.adminUrl, 'OPTIONS', `/api/v1/experiments/${EXP}/scorers/bystander/stop`, {
        origin: 'https://dash.example', // another port is another origin
        'access-control-request-method': 'POST',
      });
      expect(other.status).toBe(403);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      expect(await scorers(sc)).toEqual({ victim: 0, bystander: 0.5 });
    } finally {
      await sc.stop();
    }
  });

  it('refuses malformed admin keys at start with their key paths', async () => {
    await expect(startScorecar('admin: {allowedHosts: ["http://x.example/"], metricsAuth: open, cors: {allowedOrigins: ["dash.example"]}}')).rejects.toThrow(
      /admin\.allowedHosts\.0[\s\S]*admin\.metricsAuth[\s\S]*admin\.cors\.allowedOrigins\.0|admin\.metricsAuth[\s\S]*admin\.allowedHosts\.0/,
    );
  });
});
