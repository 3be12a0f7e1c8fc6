// A helper that runs the real OpenTelemetry Collector `kafka` exporter (contrib kafkaexporter,
// the version pinned in go.mod) against a broker, so scorecar's Kafka receiver and exporter are
// checked against what a Collector actually writes. Used by scripts/record-collector-kafka.ts,
// which records the result into test/fixtures/collector-kafka/.
//
// It exports GenAI traces with encoding otlp_proto and partition_traces_by_id, in two
// ConsumeTraces calls (a trace's spans are split over both, over two resources and two scopes,
// so a consumer must reassemble), with the given compression codec, and writes the two inputs
// as OTLP protobuf (TracesData) into -dump.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
)

func id16(seed string) (out pcommon.TraceID) {
	h := sha256.Sum256([]byte(seed))
	copy(out[:], h[:16])
	return
}

func id8(seed string) (out pcommon.SpanID) {
	h := sha256.Sum256([]byte(seed))
	copy(out[:], h[:8])
	return
}

const traces = 6

// batches returns the two inputs: roots of traces 0-2 and children of all in the first; roots
// of traces 3-5 in the second.
func batches(seed string, base time.Time) [2]ptrace.Traces {
	var out [2]ptrace.Traces
	for b := range out {
		td := ptrace.NewTraces()
		app := td.ResourceSpans().AppendEmpty()
		app.Resource().Attributes().PutStr("service.name", "collector-app")
		app.Resource().Attributes().PutStr("mlflow.experimentId", "collector")
		appScope := app.ScopeSpans().AppendEmpty()
		appScope.Scope().SetName("app")
		var retrScope ptrace.ScopeSpans
		if b == 0 {
			retr := td.ResourceSpans().AppendEmpty()
			retr.Resource().Attributes().PutStr("service.name", "retriever")
			retr.Resource().Attributes().PutStr("mlflow.experimentId", "collector")
			retrScope = retr.ScopeSpans().AppendEmpty()
			retrScope.Scope().SetName("retrieval")
		}
		for i := 0; i < traces; i++ {
			tid := id16(fmt.Sprintf("%s/trace/%d", seed, i))
			root := id8(fmt.Sprintf("%s/root/%d", seed, i))
			start := base.Add(time.Duration(i) * time.Millisecond)
			if (b == 0 && i < 3) || (b == 1 && i >= 3) {
				s := appScope.Spans().AppendEmpty()
				s.SetTraceID(tid)
				s.SetSpanID(root)
				s.SetName("chat")
				s.SetKind(ptrace.SpanKindServer)
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(20 * time.Millisecond)))
				s.Attributes().PutStr("mlflow.spanInputs", fmt.Sprintf(`{"question":"question %d"}`, i))
				s.Attributes().PutStr("mlflow.spanOutputs", fmt.Sprintf(`"answer from the collector %s %d"`, seed, i))
			}
			if b == 0 {
				c := retrScope.Spans().AppendEmpty()
				c.SetTraceID(tid)
				c.SetSpanID(id8(fmt.Sprintf("%s/child/%d", seed, i)))
				c.SetParentSpanID(root)
				c.SetName("retrieve")
				c.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
				c.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(5 * time.Millisecond)))
				c.Attributes().PutStr("openinference.span.kind", "RETRIEVER")
			}
		}
		out[b] = td
	}
	return out
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap broker")
	topic := flag.String("topic", "otlp_spans", "traces topic")
	compression := flag.String("compression", "none", "none, gzip, snappy, lz4, zstd")
	seed := flag.String("seed", "collector", "seed of the trace and span ids")
	dump := flag.String("dump", "", "directory to write the inputs into (input-1.pb, input-2.pb)")
	flag.Parse()

	factory := kafkaexporter.NewFactory()
	cfg := factory.CreateDefaultConfig().(*kafkaexporter.Config)
	cfg.ClientConfig.Brokers = []string{*brokers}
	cfg.Traces.Topic = *topic
	cfg.Traces.Encoding = "otlp_proto"
	cfg.PartitionTracesByID = true
	cfg.Producer.Compression = *compression
	// Synchronous: ConsumeTraces returns once the records are acknowledged.
	cfg.QueueBatchConfig = configoptional.None[exporterhelper.QueueBatchConfig]()

	ctx := context.Background()
	exp, err := factory.CreateTraces(ctx, exportertest.NewNopSettings(factory.Type()), cfg)
	if err != nil {
		fail(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		fail(err)
	}
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var m ptrace.ProtoMarshaler
	for i, td := range batches(*seed, base) {
		if *dump != "" {
			b, err := m.MarshalTraces(td)
			if err != nil {
				fail(err)
			}
			if err := os.WriteFile(filepath.Join(*dump, fmt.Sprintf("input-%d.pb", i+1)), b, 0o644); err != nil {
				fail(err)
			}
		}
		if err := exp.ConsumeTraces(ctx, td); err != nil {
			fail(err)
		}
	}
	if err := exp.Shutdown(ctx); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "collector-kafka:", err)
	os.Exit(1)
}
