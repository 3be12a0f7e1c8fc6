// google.rpc.Status / RetryInfo encoding for OTLP error responses (HTTP bodies and the gRPC
// grpc-status-details-bin trailer), and which statuses an OTLP client may retry.
import { GRPC } from '../util/index.ts';
import { otlpType, TYPE } from './proto.ts';


const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';

export function encodeRpcStatus(code: number, message: string, retryDelayMs?: number): Buffer {
  const details: { typeUrl: string; value: Uint8Array }[] = [];
  if (retryDelayMs !== undefined) {
    const ri = otlpType(TYPE.retryInfo);
    const seconds = Math.floor(retryDelayMs / 1000);
    const nanos = (retryDelayMs % 1000) * 1_000_000;
    details.push({ typeUrl: RETRY_INFO_URL, value: ri.encode(ri.create({ retryDelay: { seconds, nanos } })).finish() });
  }
  const st = otlpType(TYPE.rpcStatus);
  return Buffer.from(st.encode(st.create({ code, message, details })).finish());
}

export function rpcStatusJson(code: number, message: string, retryDelayMs?: number): string {
  const body: Record<string, unknown> = { code, message };
  if (retryDelayMs !== undefined) {
    body.details = [{ '@type': RETRY_INFO_URL, retryDelay: `${(retryDelayMs / 1000).toFixed(3)}s` }];
  }
  return JSON.stringify(body);
}

/** The retry delay inside a google.rpc.Status (grpc-status-details-bin), if it carries RetryInfo. */
export function retryDelayFromStatus(bytes: Uint8Array): number | undefined {
  try {
    const st = otlpType(TYPE.rpcStatus).decode(bytes) as unknown as {
      details?: { typeUrl?: string; value?: Uint8Array }[];
    };
    for (const d of st.details ?? []) {
      if (d.typeUrl === RETRY_INFO_URL && d.value) {
        const ri = otlpType(TYPE.retryInfo).decode(d.value) as unknown as {
          retryDelay?: { seconds?: number | { toNumber(): number }; nanos?: number };
        };
        const s = ri.retryDelay?.seconds;
        const secs = typeof s === 'number' ? s : (s?.toNumber() ?? 0);
        return secs * 1000 + Math.round((ri.retryDelay?.nanos ?? 0) / 1e6);
      }
    }
  } catch {
    /* not a Status: no hint */
  }
  return undefined;
}

/** gRPC codes an OTLP client may retry (RESOURCE_EXHAUSTED only with RetryInfo). */
export function grpcRetryable(code: number, hasRetryInfo: boolean): boolean {
  switch (code) {
    case GRPC.CANCELLED:
    case GRPC.DEADLINE_EXCEEDED:
    case GRPC.ABORTED:
    case GRPC.OUT_OF_RANGE:
    case GRPC.UNAVAILABLE:
    case GRPC.DATA_LOSS:
      return true;
    case GRPC.RESOURCE_EXHAUSTED:
      return hasRetryInfo;
    default:
      return false;
  }
}

export function httpRetryable(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}
