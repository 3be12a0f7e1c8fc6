"""RAG app traced with MLflow (the mlflow-tracing package) exporting over OTLP.

MLflow sends its spans to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT when that variable is set (instead of
a tracking server). The app: an @mlflow.trace CHAIN root, a RETRIEVER span returning MLflow
Documents, and the OpenAI SDK call traced by mlflow.openai.autolog(); session and user go into
the trace metadata and onto the root span; turn 1 carries scorecar expectations on the root span.
Run through scripts/record-fixtures/record.ts, which sets the endpoints.
"""

import json
import os
import sys

import mlflow
import openai
from mlflow.entities import Document, SpanType

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "kb.json"), encoding="utf-8") as f:
    KB = json.load(f)
MODEL = "gpt-4o-mini"
DOCS = {d["id"]: d for d in KB["documents"]}

mlflow.openai.autolog()
client = openai.OpenAI(max_retries=0)


def messages_for(question, docs):
    context = "\n".join(d.page_content for d in docs)
    return [
        {"role": "system", "content": f"{KB['systemPrompt']}\n\nContext:\n{context}"},
        {"role": "user", "content": question},
    ]


@mlflow.trace(span_type=SpanType.RETRIEVER)
def retrieve(question):
    turn = next(t for t in KB["turns"] if t["question"] == question)
    return [
        Document(
            page_content=DOCS[i]["content"],
            metadata={"doc_uri": DOCS[i]["metadata"]["source"], "score": DOCS[i]["score"]},
            id=i,
        )
        for i in turn["docs"]
    ]


@mlflow.trace(name="rag-query", span_type=SpanType.CHAIN)
def answer(question, stream=False):
    # MLflow's documented way: trace metadata. Its OTLP exporter (3.17) does not carry trace
    # metadata, so the app also puts the ids on the root span under the OTel names, where the
    # MLflow server itself looks for them in OTLP data (session.id / user.id).
    mlflow.update_current_trace(
        metadata={"mlflow.trace.session": KB["session"], "mlflow.trace.user": KB["user"]}
    )
    root = mlflow.get_current_active_span()
    root.set_attributes({"session.id": KB["session"], "user.id": KB["user"]})
    if question == KB["turns"][0]["question"]:
        # scorecar's expectation convention: ground truth the app knows, on the root span. (Trace
        # tags would be the MLflow way, but 3.17's OTLP exporter drops a root span that has tags.)
        root.set_attributes(
            {
                "scorecar.expectations.expected_response": "Paris is the capital of France.",
                "scorecar.expectations.expected_facts": ["Paris is the capital of France"],
            }
        )
    docs = retrieve(question)
    messages = messages_for(question, docs)
    if stream:
        chunks = client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    r = client.chat.completions.create(model=MODEL, messages=messages)
    return r.choices[0].message.content


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
    mlflow.flush_trace_async_logging() if hasattr(mlflow, "flush_trace_async_logging") else None


if __name__ == "__main__":
    main()
