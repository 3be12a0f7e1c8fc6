// A minimal protobuf writer for hand-built OTLP requests in tests: what protobufjs will not
// encode (messages nested past its 100-level recursion limit) or encodes too slowly for a test
// (hundreds of thousands of attributes).

export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

export const tag = (field: number, wireType: number): Buffer => varint(field * 8 + wireType);

/** A length-delimited field (a message, a string, bytes). */
export const ld = (field: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([tag(field, 2), varint(body.length), body]);
};

export const str = (field: number, s: string): Buffer => ld(field, Buffer.from(s));

export const fixed64 = (field: number, v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return Buffer.concat([tag(field, 1), b]);
};

export const uint = (field: number, v: number): Buffer => Buffer.concat([tag(field, 0), varint(v)]);

/** AnyValue{string_value}. */
export const sv = (s: string): Buffer => str(1, s);

/** KeyValue{key, value}. */
export const kv = (key: string, value: Buffer): Buffer => Buffer.concat([str(1, key), ld(2, value)]);

/** AnyValue{kvlist_value} nested `levels` deep (keys level1, level2, ...), `bottom` at the bottom. */
export function nestedKvlist(levels: number, bottom: Buffer = sv('bottom')): Buffer {
  let v = bottom;
  for (let i = 0; i < levels; i++) v = ld(6, ld(1, kv(`level${levels - i}`, v)));
  return v;
}

export interface RawSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  name: string;
  /** Encoded KeyValue messages. */
  attributes: Buffer[];
}

function span(s: RawSpan, startNs: bigint): Buffer {
  return Buffer.concat([
    ld(1, s.traceId),
    ld(2, s.spanId),
    ...(s.parentSpanId ? [ld(4, s.parentSpanId)] : []),
    str(5, s.name),
    uint(6, 1),
    fixed64(7, startNs),
    fixed64(8, startNs + 5_000_000n),
    ...s.attributes.map((a) => ld(9, a)),
    ld(15, uint(3, 1)),
  ]);
}

/** An ExportTraceServiceRequest: one resource (service.name), one scope, spans 1 µs apart. */
export function traceRequest(
  service: string,
  spans: RawSpan[],
  startNs = BigInt(Date.now()) * 1_000_000n,
): Buffer {
  const resource = ld(1, ld(1, kv('service.name', sv(service))));
  const scope = ld(1, str(1, 'scorecar-test'));
  return ld(1, resource, ld(2, scope, ...spans.map((s, i) => ld(2, span(s, startNs + BigInt(i) * 1000n)))));
}
