// A body over the size limit gets a complete 413, every time: the receiver answers at once and
// reads the rest of the body into nothing instead of closing a connection the sender is still
// writing to (which resets it: EPIPE at the sender, the 413 lost). Raw sockets, so nothing
// between the test and the receiver hides a reset; each case is repeated.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonToProtobuf, otlpType, TYPE } from '../../src/wire/index.ts';
import { postHead, RawConnection } from '../support/raw.ts';
import { startScorecar, type TestScorecar } from '../support/scorecar.ts';

const BODY = 50_000_000;
const REPEAT = 5;

function goodBody(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return jsonToProtobuf('traces', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8).toString('hex') }] }] }] }));
}

function statusMessage(body: Buffer): string {
  return (otlpType(TYPE.rpcStatus).decode(body) as unknown as { message: string }).message;
}

describe('50 MB bodies over the 20 MiB limit', () => {
  let sc: TestScorecar;
  let port: number;

  beforeAll(async () => {
    sc = await startScorecar('');
    port = Number(new URL(sc.httpUrl).port);
  });
  afterAll(async () => {
    await sc.stop();
  });

  /** Sends the whole body while reading, then a good request on the same connection. */
  async function oversized(chunked: boolean): Promise<void> {
    const c = new RawConnection(port);
    await c.connected;
    c.write(
      postHead('/v1/traces', {
        'content-type': 'application/x-protobuf',
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': BODY }),
      }),
    );
    await c.writeBody(BODY, 1024 * 1024, chunked);
    expect(c.error, 'the sender could write its whole body').toBeUndefined();
    const good = goodBody();
    c.write(postHead('/v1/traces', { 'content-type': 'application/x-protobuf', 'content-length': good.length }));
    c.write(good);
    const [big, next] = await c.finalResponses(2);
    expect(big!.status).toBe(413);
    expect(statusMessage(big!.body)).toMatch(/exceeds the limit of 20971520 bytes/);
    expect(next!.status).toBe(200);
    expect(c.error).toBeUndefined();
    c.destroy();
  }

  it(`declared with Content-Length: a complete 413, and the connection stays usable (x${REPEAT})`, async () => {
    for (let i = 0; i < REPEAT; i++) await oversized(false);
  });

  it(`chunked: a complete 413 once past the limit, and the connection stays usable (x${REPEAT})`, async () => {
    for (let i = 0; i < REPEAT; i++) await oversized(true);
  });

  it(`with Expect: 100-continue: 413 before any body is sent (x${REPEAT})`, async () => {
    for (let i = 0; i < REPEAT; i++) {
      const c = new RawConnection(port);
      await c.connected;
      c.write(postHead('/v1/traces', { 'content-type': 'application/x-protobuf', 'content-length': BODY, expect: '100-continue' }));
      const [res] = await c.finalResponses(1);
      // Answered without asking for the body: no 100 Continue before it.
      expect(c.responses().map((r) => r.status)).toEqual([413]);
      expect(statusMessage(res!.body)).toMatch(/request body of 50000000 bytes exceeds the limit/);
      expect(res!.headers.connection).toBe('close');
      await c.closedP;
      expect(c.error).toBeUndefined();
    }
  });

  it('counts every one', async () => {
    expect(await sc.metric('scorecar_receiver_requests_total', { transport: 'http', outcome: '413' })).toBe(3 * REPEAT);
    expect(await sc.metric('scorecar_receiver_requests_total', { transport: 'http', outcome: 'ok' })).toBe(2 * REPEAT);
  });
});
