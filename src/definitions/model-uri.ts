// Model URIs, MLflow style: `<provider>:/<model>`, optionally followed by `@<base URL>` to send
// the request to another server speaking the same API (vLLM, Ollama, LiteLLM, a gateway, the
// local model server):
//   openai:/gpt-4.1-mini                      OpenAI, or OPENAI_BASE_URL / scoring.providers.openai.baseUrl
//   openai:/llama3.1:8b@http://127.0.0.1:11434/v1   any OpenAI-compatible server (base URL includes /v1)
//   anthropic:/claude-sonnet-4-5              Anthropic messages API (base URL without /v1)
//   anthropic:/claude-haiku-4-5@http://127.0.0.1:8089
//   databricks:/my-judge-endpoint             {DATABRICKS_HOST}/serving-endpoints/my-judge-endpoint/invocations
//   databricks:/my-judge-endpoint@https://adb-123.azuredatabricks.net
// The split is at the last `@http://` or `@https://`, so model names may contain `@` and `:`.

export const MODEL_PROVIDERS = ['openai', 'anthropic', 'databricks'] as const;
export type ModelProvider = (typeof MODEL_PROVIDERS)[number];

export interface ModelUri {
  /** The URI exactly as written (assessment source id). */
  uri: string;
  provider: ModelProvider;
  /** Model name (OpenAI / Anthropic) or serving endpoint name (Databricks). */
  model: string;
  /** Base URL given in the URI itself, without a trailing slash. */
  baseUrl?: string;
}

export type ParsedModelUri = { ok: true; value: ModelUri } | { ok: false; message: string };

const EXAMPLES =
  'expected openai:/<model>, anthropic:/<model> or databricks:/<endpoint>, optionally followed by @http(s)://host:port/...';

export function parseModelUri(uri: string): ParsedModelUri {
  if (typeof uri !== 'string' || uri.trim() === '')
    return { ok: false, message: `model URI is empty: ${EXAMPLES}` };
  if (uri !== uri.trim()) return { ok: false, message: 'model URI has leading or trailing spaces' };
  const m = /^([a-z]+):\/(?!\/)(.+)$/.exec(uri);
  if (!m) return { ok: false, message: `malformed model URI "${uri}": ${EXAMPLES}` };
  const scheme = m[1]!;
  let rest = m[2]!;
  if (!(MODEL_PROVIDERS as readonly string[]).includes(scheme)) {
    return { ok: false, message: `unknown model provider "${scheme}" in "${uri}": ${EXAMPLES}` };
  }
  let baseUrl: string | undefined;
  const at = Math.max(rest.lastIndexOf('@http://'), rest.lastIndexOf('@https://'));
  if (at >= 0) {
    const raw = rest.slice(at + 1);
    rest = rest.slice(0, at);
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      return { ok: false, message: `invalid base URL "${raw}" in model URI "${uri}"` };
    }
    if (parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') {
      return {
        ok: false,
        message: `base URL "${raw}" in model URI "${uri}" must not carry credentials, a query or a fragment`,
      };
    }
    baseUrl = raw.replace(/\/+$/, '');
  }
  if (rest === '' || /\s/.test(rest)) {
    return { ok: false, message: `model URI "${uri}" needs a model name without spaces after "${scheme}:/"` };
  }
  if (scheme === 'databricks' && rest.includes('/')) {
    return { ok: false, message: `databricks serving endpoint name "${rest}" must not contain "/"` };
  }
  const value: ModelUri = { uri, provider: scheme as ModelProvider, model: rest };
  if (baseUrl !== undefined) value.baseUrl = baseUrl;
  return { ok: true, value };
}

/** The URI without its `@base` part: the fallback key for the price table. */
export function modelUriWithoutBase(uri: ModelUri): string {
  return `${uri.provider}:/${uri.model}`;
}
