// A fetch for an admin port served over https with a private CA (or requiring a client
// certificate): Node's global fetch trusts only the system store plus NODE_EXTRA_CA_CERTS, which
// is read once at process start, and takes per-call CAs only through an undici dispatcher (not a
// dependency of the SDK). node:https takes them per agent, so the SDK answers what the client
// needs (method, headers, a string body, an abort signal; status, headers, body) over it, with
// the same failure shapes as fetch: TypeError('fetch failed', {cause}) when the server cannot be
// reached or the handshake fails, the signal's reason when aborted.
//
// node:https is loaded only when a client is given TLS settings (process.getBuiltinModule), so
// importing the SDK stays free of Node-only modules for runtimes that bring their own fetch.
import type httpsModule from 'node:https';

/** What the client trusts and presents (PEM). */
export interface ClientTls {
  /** CA bundle that signed the admin server's certificate (besides the system store). */
  ca?: string | Buffer | undefined;
  /** Client certificate and key, for an admin port with mTLS (admin.tls.clientCaFile). */
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
}

/** Status codes whose responses carry no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export function tlsFetch(tls: ClientTls): typeof globalThis.fetch {
  const https = process.getBuiltinModule('node:https') as typeof httpsModule;
  const agent = new https.Agent({
    keepAlive: true,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
  });
  const impl = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    // Plain http needs nothing of ours.
    if (url.protocol !== 'https:') return globalThis.fetch(input, init);
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      return Promise.reject(new TypeError('the SDK TLS fetch sends string bodies only'));
    }
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => {
      headers[k] = v;
    });
    if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
    const signal = init?.signal ?? undefined;
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const req = https.request(url, { method: init?.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', (e) => reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: e })));
        res.once('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
          }
          const status = res.statusCode ?? 502;
          const bytes = Buffer.concat(chunks);
          resolve(new Response(NULL_BODY.has(status) ? null : new Uint8Array(bytes), { status, statusText: res.statusMessage ?? '', headers: out }));
        });
      });
      const onAbort = (): void => {
        req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('error', (e) => {
        signal?.removeEventListener('abort', onAbort);
        reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: e }));
      });
      req.end(typeof body === 'string' ? body : undefined);
    });
  };
  return impl as typeof globalThis.fetch;
}
