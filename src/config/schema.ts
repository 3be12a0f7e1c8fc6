// The whole configuration, validated once at start (every error reported with its key path)
// and then frozen. Defaults here are the embedded defaults `npm start` runs on.
import { z } from 'zod';

const MiB = 1024 * 1024;

const endpoint = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port (empty host means all interfaces)');

/** An endpoint that may be switched off with an empty string or null. */
const optionalEndpoint = z.union([endpoint, z.literal(''), z.null()]).transform((v) => v || null);

const retry = z
  .object({
    initialIntervalMs: z.number().int().positive().default(500),
    maxIntervalMs: z.number().int().positive().default(30_000),
    /** Give up on an item after this long; 0 = try once only. */
    maxElapsedMs: z.number().int().nonnegative().default(300_000),
    multiplier: z.number().min(1).default(1.5),
    /** Jitter: each wait is drawn from [1 - r, 1 + r] times the nominal interval. */
    randomizationFactor: z.number().min(0).max(1).default(0.5),
  })
  .strict();

const tls = z
  .object({
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    insecureSkipVerify: z.boolean().default(false),
  })
  .strict();

/**
 * Server TLS of a receiver or the admin port, as the OpenTelemetry Collector's configtls server
 * settings (cert_file, key_file, client_ca_file, min_version, reload_interval) in this file's
 * camelCase. Absent (or null) = plaintext. The files are read and checked at start (load.ts).
 */
const serverTls = z
  .object({
    /** PEM certificate (chain) the server presents. */
    certFile: z.string().min(1),
    /** PEM private key of certFile (unencrypted). */
    keyFile: z.string().min(1),
    /** PEM CA bundle: set, clients must present a certificate it signed (mTLS); others fail the handshake. */
    clientCaFile: z.string().min(1).optional(),
    minVersion: z.enum(['1.2', '1.3']).default('1.2'),
    /** How often the three files are read again; a changed, valid pair is used for new connections. 0 = never. */
    reloadIntervalMs: z.number().int().nonnegative().default(60_000),
  })
  .strict();

const optionalServerTls = serverTls.nullish().transform((v) => v ?? undefined);

const exporter = z
  .object({
    /** http(s)://host:port = OTLP/HTTP protobuf; grpc(s)://host:port = OTLP/gRPC; '' = none. */
    endpoint: z
      .string()
      .default('')
      .refine((s) => s === '' || /^(https?|grpcs?):\/\/[^/\s]+(\/.*)?$/.test(s), {
        message: 'expected http(s)://host:port, grpc(s)://host:port or an empty string (no downstream)',
      }),
    headers: z.record(z.string(), z.string()).default({}),
    compression: z.enum(['none', 'gzip']).default('none'),
    timeoutMs: z.number().int().positive().default(10_000),
    tls: tls.prefault({}),
    queue: z
      .object({
        maxBytes: z.number().int().positive().default(64 * MiB),
        /** refuse: senders get 503/UNAVAILABLE and retry; drop: accept, count and drop. */
        whenFull: z.enum(['refuse', 'drop']).default('refuse'),
        concurrency: z.number().int().min(1).max(256).default(4),
        /**
         * memory: a crash loses what is queued. disk: every request is also written to a spool
         * under <storage.dir>/export-queue before it is acknowledged, and what was not sent is
         * replayed at the next start (maxBytes bounds the spool on disk too).
         */
        storage: z.enum(['memory', 'disk']).default('memory'),
        /**
         * disk only: when spooled requests reach the device. never: left to the OS (a process
         * crash loses nothing, a power loss what the OS had not written); interval: flushed every
         * fsyncIntervalMs off the event loop; always: flushed before each acknowledgement.
         */
        fsync: z.enum(['never', 'interval', 'always']).default('interval'),
        fsyncIntervalMs: z.number().int().positive().default(1_000),
      })
      .strict()
      .prefault({}),
    retry: retry.prefault({}),
  })
  .strict();

const compression = z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']);

const kafkaTopic = (name: string, partitions: number) =>
  z
    .object({
      name: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name ([A-Za-z0-9._-], at most 249)').default(name),
      /** Used when scorecar creates the topic (kafka.createTopics); an existing topic keeps its own. */
      partitions: z.number().int().min(1).max(10_000).default(partitions),
    })
    .strict()
    .prefault({});

const kafka = z
  .object({
    /** host:port of one or more brokers; required by scoring.mode kafka and exporters.kafka. */
    brokers: z.array(endpoint).default([]),
    /** The client library behind src/kafka/client.ts. */
    client: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
    clientId: z.string().min(1).default('scorecar'),
    requestTimeoutMs: z.number().int().positive().default(10_000),
    /** Create the topics scorecar uses when they do not exist (at start). */
    createTopics: z.boolean().default(true),
    topics: z
      .object({
        jobs: kafkaTopic('scorecar.jobs', 12),
        assessments: kafkaTopic('scorecar.assessments', 12),
      })
      .strict()
      .prefault({}),
    jobs: z
      .object({
        /**
         * Encoded jobs waiting to be written (the broker slow or unreachable), counted in the
         * memory budget; beyond it new jobs are dropped and counted. Kafka never blocks receivers.
         */
        bufferBytes: z.number().int().positive().default(64 * MiB),
        /** Largest write (bytes of encoded jobs) sent at once. */
        batchBytes: z.number().int().positive().default(1 * MiB),
        compression: compression.default('lz4'),
        retry: retry.prefault({ initialIntervalMs: 200, maxIntervalMs: 5_000, maxElapsedMs: 0 }),
      })
      .strict()
      .prefault({}),
    worker: z
      .object({
        groupId: z.string().min(1).default('scorecar-workers'),
        /** Jobs scored together; their offsets are committed once all their assessments are written. */
        batchSize: z.number().int().min(1).max(10_000).default(256),
        sessionTimeoutMs: z.number().int().min(1_000).default(10_000),
        /** /metrics, /healthz and /readyz of `scorecar worker`; "" switches it off. */
        metricsEndpoint: optionalEndpoint.default('127.0.0.1:4321'),
      })
      .strict()
      .prefault({}),
    emitter: z
      .object({
        /** The group of the processes that own the downstream exporter (they consume assessments). */
        groupId: z.string().min(1).default('scorecar-emitter'),
        batchSize: z.number().int().min(1).max(10_000).default(500),
        sessionTimeoutMs: z.number().int().min(1_000).default(10_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const scorerDefinition = z.looseObject({ type: z.string() });

const scorerEntry = z
  .object({
    experiment: z.string().min(1),
    name: z.string().min(1),
    definition: scorerDefinition,
    sampleRate: z.number().min(0).max(1).default(0),
    filterString: z.string().nullable().optional(),
  })
  .strict();

const modelProvider = z
  .object({
    baseUrl: z.string().url().optional(),
    apiKey: z.string().optional(),
    /** Requests in flight to this provider at once. */
    concurrency: z.number().int().min(1).max(1024).optional(),
  })
  .strict();

const price = z
  .object({
    inputPerMillionTokens: z.number().nonnegative(),
    outputPerMillionTokens: z.number().nonnegative(),
  })
  .strict();

const budget = z
  .object({
    tokensPerDay: z.number().int().positive().optional(),
    costPerDay: z.number().positive().optional(),
  })
  .strict();

export const configSchema = z
  .object({
    receivers: z
      .object({
        otlp: z
          .object({
            grpc: z
              .object({
                endpoint: optionalEndpoint.default('0.0.0.0:4317'),
                /** Checked after decompression (a gzip message inflating past it is refused). */
                maxRecvMsgSizeBytes: z.number().int().positive().default(4 * MiB),
                /** Connections open at once; more are closed as they arrive (and counted). */
                maxConnections: z.number().int().positive().default(4096),
                /** Calls in progress at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
                maxConcurrentStreams: z.number().int().positive().max(2 ** 31 - 1).default(100),
                /** A new connection must have sent the HTTP/2 preface and its SETTINGS within this. */
                handshakeTimeoutMs: z.number().int().positive().default(10_000),
                /** A call's request message must have arrived in full within this of its headers. */
                requestTimeoutMs: z.number().int().positive().default(60_000),
                /** A connection without a call in progress for this long is closed (GOAWAY). */
                idleTimeoutMs: z.number().int().positive().default(60_000),
                /** Serve OTLP/gRPC over TLS (ALPN h2) instead of plaintext h2c. */
                tls: optionalServerTls,
              })
              .strict()
              .prefault({}),
            http: z
              .object({
                endpoint: optionalEndpoint.default('0.0.0.0:4318'),
                /** Checked after decompression, as the OTLP spec asks. */
                maxRequestBodyBytes: z.number().int().positive().default(20 * MiB),
                /** Connections open at once; more are closed as they arrive (and counted). */
                maxConnections: z.number().int().positive().default(4096),
                /** A request's headers must have arrived within this (from its first byte, or the connect). */
                headerTimeoutMs: z.number().int().positive().default(10_000),
                /** A request's body must have arrived in full within this of its headers (else 408). */
                requestTimeoutMs: z.number().int().positive().default(60_000),
                /** A keep-alive connection without a request for this long is closed. */
                idleTimeoutMs: z.number().int().positive().default(65_000),
                /** Worker threads converting OTLP/JSON bodies over 64 KiB to protobuf, off the event loop. */
                jsonWorkers: z.number().int().min(1).max(64).default(2),
                /** Serve OTLP/HTTP over TLS (https, HTTP/1.1) instead of plaintext. */
                tls: optionalServerTls,
              })
              .strict()
              .prefault({}),
          })
          .strict()
          .prefault({}),
        /**
         * Reads what an OpenTelemetry Collector's kafka exporter writes (otlp_proto traces, any
         * codec) from kafka.brokers, and feeds it to the same pipeline as the OTLP receivers.
         */
        kafka: z
          .object({
            enabled: z.boolean().default(false),
            topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').default('otlp_spans'),
            groupId: z.string().min(1).default('scorecar-receiver'),
            batchSize: z.number().int().min(1).max(10_000).default(500),
            sessionTimeoutMs: z.number().int().min(1_000).default(10_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    exporters: z
      .object({
        otlp: exporter.prefault({}),
        kafka: z
          .object({
            /**
             * Inline mode: also publish every assessment (first emission only) to the
             * assessments topic, the public contract Kafka consumers read (kafka mode always does).
             */
            assessments: z.boolean().default(false),
            /** Assessments waiting to be written, counted in the memory budget; beyond, dropped and counted. */
            bufferBytes: z.number().int().positive().default(16 * MiB),
            compression: compression.default('none'),
            /**
             * Every received span written to a topic in the OpenTelemetry Collector kafka
             * exporter's format (otlp_proto, partition_traces_by_id), e.g. to feed a central
             * scoring tier. Kafka never blocks receivers: beyond bufferBytes, dropped and counted.
             */
            spans: z
              .object({
                enabled: z.boolean().default(false),
                topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name').default('otlp_spans'),
                bufferBytes: z.number().int().positive().default(64 * MiB),
                compression: compression.default('none'),
              })
              .strict()
              .prefault({}),
          })
          .strict()
          .prefault({}),
        /**
         * MLflow as a destination (src/mlflow): traces go to the MLflow server's OTLP endpoint and
         * every assessment is logged there as Feedback on its trace. Off while trackingUri is ''.
         */
        mlflow: z
          .object({
            /** The MLflow tracking server, http(s)://host:port[/path]; '' = off. */
            trackingUri: z
              .string()
              .default('')
              .refine((s) => s === '' || /^https?:\/\/[^/\s]+(\/.*)?$/.test(s), {
                message: 'expected http(s)://host:port of an MLflow tracking server, or an empty string (off)',
              }),
            /**
             * scorecar experiment -> MLflow experiment id ('*' for every experiment without its own
             * entry). An experiment without an entry is not sent.
             */
            experimentMapping: z.record(z.string().min(1), z.string().regex(/^\d+$/, 'expected a numeric MLflow experiment id')).default({}),
            /** Extra headers on every request (e.g. Authorization: Bearer … for a secured MLflow). */
            headers: z.record(z.string(), z.string()).default({}),
            timeoutMs: z.number().int().positive().default(10_000),
            /** Requests (trace batches, feedback) queued for MLflow; beyond it the oldest are dropped and counted. */
            queueSize: z.number().int().positive().default(10_000),
            retry: retry.prefault({}),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    mlflow: z
      .object({
        /** Serve MLflow's REST API for scorers (/api/2.0/mlflow/*, /api/3.0/mlflow/*) on the admin port. */
        enabled: z.boolean().default(true),
        /**
         * MLflow `gateway:/<endpoint>` judge models: endpoint name -> scorecar model URI
         * (openai:/…, anthropic:/…, databricks:/…, optionally @base URL). Resolved at registration.
         */
        gatewayEndpoints: z.record(z.string().min(1), z.string().min(1)).default({}),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        endpoint: endpoint.default('127.0.0.1:4320'),
        /** Bearer token for /api; also SCORECAR_ADMIN_TOKEN. */
        token: z.string().default(''),
        /**
         * Host names (no port; IPv6 in brackets) served besides localhost, 127.0.0.1 and [::1].
         * Without a token the Host header is always checked (DNS-rebinding guard); with a
         * token, only when this list is set. /healthz and /readyz answer any Host.
         */
        allowedHosts: z
          .array(
            z
              .string()
              .regex(
                /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$/,
                'expected a host name or IP address without scheme, port or path (IPv6 in brackets)',
              ),
          )
          .default([]),
        /** /metrics with a token set: token = needs the bearer token as /api does; none = open to scrapers. */
        metricsAuth: z.enum(['token', 'none']).default('token'),
        /** Serve the admin port (API, UI, /metrics, probes) over https. */
        tls: optionalServerTls,
        cors: z
          .object({
            /** Browser origins allowed to call /api cross-origin; none by default (no CORS headers sent). */
            allowedOrigins: z
              .array(
                z
                  .string()
                  .regex(/^https?:\/\/[^/\s?#]+$/, 'expected an origin: http(s)://host[:port], no path'),
              )
              .default([]),
          })
          .strict()
          .prefault({}),
        ui: z
          .object({
            /** Serve the web UI at / (its API calls follow the token rule of /api). */
            enabled: z.boolean().default(true),
            /**
             * Keep the last N completed traces in memory for dry runs ("try before you start"
             * on recent traces). 0 = off: with it on, the assembler buffers every trace, not
             * only those a scorer or the archive wants.
             */
            recentTraces: z.number().int().min(0).max(1000).default(0),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        dir: z.string().min(1).default('./data'),
        /**
         * The shared store of several replicas: with a url, the registry, assessments, backfill
         * jobs and judge budgets live in PostgreSQL instead of SQLite files under dir.
         */
        postgres: z
          .object({
            /** postgres://user:password@host:5432/db (libpq URL; ?sslmode= for TLS). '' = SQLite. */
            url: z.string().default(''),
            /** Schema of scorecar's tables (created when missing): several deployments may share a database. */
            schema: z
              .string()
              .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lower-case identifier')
              .default('public'),
            /** Connections per process. */
            poolSize: z.number().int().min(2).max(200).default(10),
            connectTimeoutMs: z.number().int().positive().default(5_000),
            /** A statement running longer is cancelled by the server (0 = no limit). */
            statementTimeoutMs: z.number().int().nonnegative().default(30_000),
            /**
             * /readyz answers 503 while the database cannot be reached (a gateway behind a Service).
             * false keeps a replica ready through an outage (a sidecar: its pod stays in service).
             */
            requiredForReadiness: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    assembler: z
      .object({
        /** Wait after the root span arrives for stragglers of the same trace. */
        settleMs: z.number().int().nonnegative().default(2_000),
        /** Complete a trace whose root never arrives after this long without new spans. */
        idleTimeoutMs: z.number().int().positive().default(30_000),
        /** Complete any trace this long after its first span, whatever else happens. */
        maxAgeMs: z.number().int().positive().default(300_000),
        maxBytes: z.number().int().positive().default(256 * MiB),
        /** How many finished trace ids are remembered to recognise late spans. */
        decisionCacheSize: z.number().int().positive().default(200_000),
        /**
         * Traces still buffered at shutdown: complete them (scored, their assessments record
         * scorecar.trace.completion = shutdown) or drop them (counted).
         */
        onShutdown: z.enum(['complete', 'drop']).default('complete'),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Budget for request bodies in flight + export queue + buffered traces. */
        memoryBytes: z.number().int().positive().default(512 * MiB),
        retryAfterSeconds: z.number().int().min(1).max(3600).default(1),
      })
      .strict()
      .prefault({}),
    experiments: z
      .object({
        /**
         * Where a trace's experiment comes from, first hit wins: `resource:<attr>`,
         * `header:<name>` (request header / gRPC metadata) or `span:<attr>` (root span).
         */
        resolution: z
          .array(z.string().regex(/^(resource|header|span):.+$/, 'expected resource:<attr>, header:<name> or span:<attr>'))
          .default(['resource:mlflow.experimentId', 'header:x-mlflow-experiment-id', 'resource:service.name']),
        default: z.string().min(1).default('default'),
      })
      .strict()
      .prefault({}),
    sampling: z
      .object({
        /** One salt for every scorer, so samples nest; change it only to re-draw every sample. */
        salt: z.string().min(1).default('scorecar/sampling/v1'),
      })
      .strict()
      .prefault({}),
    scoring: z
      .object({
        /**
         * inline: the sidecar scores selected traces itself. kafka: it publishes each selected
         * (trace, scorer version) job to kafka.topics.jobs; `scorecar worker` processes score them
         * and write assessments to kafka.topics.assessments, which this process consumes and emits.
         */
        mode: z.enum(['inline', 'kafka']).default('inline'),
        queueSize: z.number().int().positive().default(10_000),
        /** Bound on the memory of queued jobs (their trace views, estimated from wire size). */
        queueMaxBytes: z.number().int().positive().default(64 * MiB),
        defaultModel: z.string().default('openai:/gpt-4.1-mini'),
        timeoutMs: z.number().int().positive().default(60_000),
        retry: retry.prefault({ initialIntervalMs: 1000, maxIntervalMs: 30_000, maxElapsedMs: 120_000 }),
        /** Default concurrency per model provider (per base URL). */
        concurrency: z.number().int().min(1).max(1024).default(8),
        providers: z
          .object({
            openai: modelProvider.optional(),
            anthropic: modelProvider.optional(),
            databricks: modelProvider.optional(),
          })
          .strict()
          .prefault({}),
        /** Price table keyed by model URI, used to record cost on assessments. */
        prices: z.record(z.string(), price).default({}),
        /** Hard daily budget per experiment ('*' applies to every experiment without its own). */
        budgets: z.record(z.string(), budget).default({}),
        sandbox: z
          .object({
            timeoutMs: z.number().int().positive().default(1_000),
            memoryBytes: z.number().int().positive().default(64 * MiB),
            /** Worker threads running code scorers, shared fairly between scorers (scoring/sandbox/pool.ts). */
            workers: z.number().int().min(1).max(64).default(2),
          })
          .strict()
          .prefault({}),
        /** Python scorers (MLflow @scorer and `type: python`): CPython in wasm (Pyodide) on worker threads. */
        python: z
          .object({
            /** CPU time of one call on its worker thread. */
            timeoutMs: z.number().int().positive().default(2_000),
            /** How far one call may grow the interpreter's wasm memory past its size after start-up. */
            memoryBytes: z.number().int().positive().default(128 * MiB),
            /** Worker threads, each with its own interpreter (about 110 MB resident each). */
            workers: z.number().int().min(1).max(64).default(1),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    genai: z
      .object({
        /**
         * Worker threads building GenAI views off the event loop (select/view-workers.ts); 0 builds
         * them on the event loop in slices of at most 5 ms, which one big view can outlast.
         */
        viewWorkers: z.number().int().min(0).max(64).default(1),
        /**
         * With view workers, traces of at most this many wire bytes still get their view on the
         * event loop (same 5 ms slices): for a small trace, sending it to a worker and its view
         * back costs more than building it. 0 = every view on a worker.
         */
        viewInlineMaxBytes: z.number().int().min(0).max(1024 * 1024).default(64 * 1024),
        /**
         * Bounds of one trace's view, as OpenTelemetry's SpanLimits bound a span (wire/decode.ts
         * DEFAULT_VIEW_LIMITS): what is past them is skipped undecoded and counted.
         */
        viewLimits: z
          .object({
            spansPerTrace: z.number().int().min(1).default(10_000),
            logRecordsPerTrace: z.number().int().min(0).default(10_000),
            valuesPerTrace: z.number().int().min(1).default(100_000),
            attributeCount: z.number().int().min(0).default(1024),
            attributeValueLength: z.number().int().min(1).default(256 * 1024),
            arrayItems: z.number().int().min(0).default(1024),
            valueDepth: z.number().int().min(0).max(1000).default(32),
            eventsPerSpan: z.number().int().min(0).default(1024),
            linksPerSpan: z.number().int().min(0).default(128),
            attributesPerEvent: z.number().int().min(0).default(128),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    kafka: kafka.prefault({}),
    scorers: z.array(scorerEntry).default([]),
    archive: z
      .object({
        /** Where an experiment's tables go when no tablePath is given: <dir>/<experiment> ('' = <storage.dir>/archive). */
        dir: z.string().default(''),
        /** Experiments archived from the start (config as code): experiment -> { tablePath }. */
        tables: z
          .record(z.string().min(1), z.object({ tablePath: z.string().min(1).optional() }).strict())
          .default({}),
        /** A table's buffered rows are committed this often, or at commitMaxRows, whichever comes first. */
        commitIntervalMs: z.number().int().min(100).default(10_000),
        commitMaxRows: z.number().int().min(1).max(1_000_000).default(20_000),
        /** Memory of rows waiting for their commit (estimated; counted in limits.memoryBytes); beyond it, traces are dropped and counted. */
        maxBufferBytes: z.number().int().positive().default(128 * MiB),
        /** Trace ids remembered per experiment so that a trace archived once is never archived again (after a restart too). */
        dedupWindow: z.number().int().nonnegative().default(200_000),
        /** Rows whose date partition is older than this many days are removed from the tables (0 = keep everything). */
        retentionDays: z.number().int().nonnegative().default(0),
        vacuum: z
          .object({
            /** How often retention, compaction of small files and vacuum run (0 = never). */
            intervalMs: z.number().int().nonnegative().default(3_600_000),
            /** Files removed from a table (or never committed) are deleted once this old. */
            retainHours: z.number().min(1).default(168),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    backfill: z
      .object({
        /** The time range of a backfill that names none: the last this many days. */
        defaultLookbackDays: z.number().positive().default(7),
        /** Scoring jobs a backfill keeps queued at once (it waits for room; live traffic keeps its own queue). */
        maxJobsInFlight: z.number().int().min(1).max(100_000).default(256),
        /** Progress is saved this often (a restarted backfill resumes from its last save). */
        checkpointEveryTraces: z.number().int().min(1).default(500),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
        format: z.enum(['text', 'json']).default('text'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const needs = (what: string, path: (string | number)[]): void => {
      if (c.kafka.brokers.length === 0) ctx.addIssue({ code: 'custom', path, message: `${what} needs kafka.brokers` });
    };
    if (c.scoring.mode === 'kafka') needs('scoring.mode kafka', ['scoring', 'mode']);
    if (c.exporters.kafka.assessments) needs('exporters.kafka.assessments', ['exporters', 'kafka', 'assessments']);
    if (c.exporters.kafka.spans.enabled) needs('exporters.kafka.spans', ['exporters', 'kafka', 'spans', 'enabled']);
    if (c.receivers.kafka.enabled) needs('receivers.kafka', ['receivers', 'kafka', 'enabled']);
    if (c.receivers.kafka.enabled && c.exporters.kafka.spans.enabled && c.receivers.kafka.topic === c.exporters.kafka.spans.topic) {
      ctx.addIssue({ code: 'custom', path: ['exporters', 'kafka', 'spans', 'topic'], message: 'is the topic receivers.kafka reads: every span would come back forever' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type KafkaConfig = Config['kafka'];
export type ExporterConfig = Config['exporters']['otlp'];
export type MlflowExporterConfig = Config['exporters']['mlflow'];
export type MlflowConfig = Config['mlflow'];
export type RetryConfig = z.infer<typeof retry>;
export type ScorerEntry = z.infer<typeof scorerEntry>;
export type ArchiveConfig = Config['archive'];
export type ServerTlsConfig = z.infer<typeof serverTls>;
export type BackfillConfig = Config['backfill'];
