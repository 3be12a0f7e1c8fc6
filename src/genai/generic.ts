// Names no single library owns: OTel's `session.id` and `user.id` (also written by OpenInference,
// Langfuse and, JSON-encoded, by MLflow), the older `enduser.id`, and bare `input` / `output`
// attributes that hand-instrumented apps use (Langfuse reads those too).
import type { SpanData } from '../wire/index.ts';
import type { ConventionReader } from './convention.ts';
import { attrJson, attrString } from './values.ts';

export const generic: ConventionReader = {
  name: 'otel',
  detect: () => false,
  inputs: (span) => attrJson(span.attributes, 'input'),
  outputs: (span) => attrJson(span.attributes, 'output'),
  sessionId: (span: SpanData) => attrString(span.attributes, 'session.id'),
  userId: (span: SpanData) =>
    attrString(span.attributes, 'user.id') ?? attrString(span.attributes, 'enduser.id'),
};
