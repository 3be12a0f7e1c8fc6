"""RAG app traced with the OpenTelemetry Python openai-v2 instrumentation, latest experimental
GenAI semantic conventions with message content on spans (gen_ai.input.messages /
gen_ai.output.messages). The app's own root span carries gen_ai.conversation.id and user.id; its
retrieval span follows the GenAI semconv retrieval shape. Run through
scripts/record-fixtures/record.ts, which sets the endpoints and the semconv opt-in variables.
"""

import json
import os
import sys

import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "kb.json"), encoding="utf-8") as f:
    KB = json.load(f)
MODEL = "gpt-4o-mini"
DOCS = {d["id"]: d for d in KB["documents"]}

provider = TracerProvider(
    resource=Resource.create(
        {"service.name": "rag-genai-semconv-python", "deployment.environment.name": "fixtures"}
    )
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = trace.get_tracer("rag-app")
client = openai.OpenAI(max_retries=0)


def retrieve(question):
    with tracer.start_as_current_span("retrieval kb") as span:
        turn = next(t for t in KB["turns"] if t["question"] == question)
        docs = [DOCS[i] for i in turn["docs"]]
        span.set_attributes(
            {
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": "kb",
                "gen_ai.retrieval.query.text": question,
                "gen_ai.retrieval.documents": json.dumps(
                    [{"id": d["id"], "score": d["score"], "content": d["content"]} for d in docs]
                ),
            }
        )
        return docs


def answer(question, stream=False):
    attrs = {"gen_ai.conversation.id": KB["session"], "user.id": KB["user"]}
    with tracer.start_as_current_span("rag-query", attributes=attrs) as root:
        try:
            docs = retrieve(question)
            context = "\n".join(d["content"] for d in docs)
            messages = [
                {"role": "system", "content": f"{KB['systemPrompt']}\n\nContext:\n{context}"},
                {"role": "user", "content": question},
            ]
            if stream:
                chunks = client.chat.completions.create(
                    model=MODEL,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
            r = client.chat.completions.create(model=MODEL, messages=messages)
            return r.choices[0].message.content
        except Exception as e:
            root.set_status(Status(StatusCode.ERROR, str(e)))
            raise


def main():
    for i, turn in enumerate(KB["turns"]):
        try:
            out = answer(turn["question"], stream=turn["stream"])
            if turn["answer"] is None:
                raise SystemExit(f"turn {i + 1} should have failed but returned {out!r}")
        except openai.APIError as e:
            if turn["answer"] is not None:
                raise
            print(f"turn {i + 1} failed as planned: {e}", file=sys.stderr)
    provider.shutdown()


if __name__ == "__main__":
    main()
