# Reads scorecar's archive tables with two independent Delta readers (delta-rs and DuckDB's delta
# extension) and prints one JSON document for the test to compare with what it sent.
#
#   python delta_read.py '<json spec>'
#
# spec: {"traces": path?, "assessments": path?, "sample": [trace ids to return whole]}
# One process per test file reads everything it needs (interpreter and extension start-up is the
# expensive part). Exits through os._exit: deltalake may abort at interpreter exit after correct
# output (delta-io/delta-rs#2184).
import hashlib
import json
import os
import re
import sys

import duckdb
import duckdb_ext
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder

spec = json.loads(sys.argv[1])
out = {}


def digest_spans(spans):
    """sha256 over the spans in a fixed byte form (the test builds the same from what it sent)."""
    h = hashlib.sha256()
    for s in sorted(spans, key=lambda s: s["span_id"]):
        fields = [
            s["span_id"],
            s["parent_id"] or "",
            s["name"],
            s["kind"],
            str(s["start_us"]),
            str(s["end_us"]),
            s["status_code"],
            s["status_message"] or "",
        ]
        for k, v in sorted(s["attributes"] or []):
            fields.append(k)
            fields.append(v if v is not None else "")
        for e in s["events"] or []:
            fields.append(e["name"])
            fields.append(str(e["ts_us"]))
            for k, v in sorted(e["attributes"] or []):
                fields.append(k)
                fields.append(v if v is not None else "")
        h.update("\x1f".join(fields).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def us(ts):
    return None if ts is None else int(ts.value)


con = duckdb.connect(
    config={
        "extension_directory": os.path.join(duckdb_ext.__path__[0], "extensions"),
        "autoinstall_known_extensions": False,
    }
)
con.execute("LOAD delta")


def duck_scan(path):
    return f"delta_scan('file://{os.path.abspath(path)}')"


def read_traces(path, want):
    dt = DeltaTable(path)
    p = dt.protocol()
    t = dt.to_pyarrow_table()
    rt = t.column("request_time").cast(pa.int64())
    spans_col = t.column("spans").to_pylist()
    ids = t.column("trace_id").to_pylist()
    digests = {}
    counts = {}
    # Exact microseconds: read the nested timestamps as int64 through Arrow, not via datetime.
    flat = pc.list_flatten(t.column("spans"))
    starts = pc.struct_field(flat, "start_time").cast(pa.int64()).to_pylist()
    ends = pc.struct_field(flat, "end_time").cast(pa.int64()).to_pylist()
    evs = pc.struct_field(flat, "events")
    ev_ts = [ev_list or [] for ev_list in evs.to_pylist()]
    ev_flat = pc.list_flatten(evs)
    ev_times = pc.struct_field(ev_flat, "timestamp").cast(pa.int64()).to_pylist() if len(ev_flat) else []
    k = 0
    e = 0
    for i, spans in enumerate(spans_col):
        conv = []
        for s in spans:
            events = []
            for ev in ev_ts[k]:
                events.append({"name": ev["name"], "ts_us": ev_times[e], "attributes": ev["attributes"]})
                e += 1
            conv.append(
                {
                    "span_id": s["span_id"],
                    "parent_id": s["parent_id"],
                    "name": s["name"],
                    "kind": s["kind"],
                    "start_us": starts[k],
                    "end_us": ends[k],
                    "status_code": s["status_code"],
                    "status_message": s["status_message"],
                    "attributes": s["attributes"],
                    "events": events,
                }
            )
            k += 1
        digests[ids[i]] = digest_spans(conv)
        counts[ids[i]] = counts.get(ids[i], 0) + 1
    adds = pa.table(dt.get_add_actions(flatten=True))
    cnt_sql = pa.table(QueryBuilder().register("t", dt).execute("SELECT count(*) AS n FROM t").read_all()).column(0)[0].as_py()
    mx = pc.max(rt).as_py()
    ds = dt.to_pyarrow_dataset()
    frags_all = len(list(ds.get_fragments()))
    frags_above = len(list(ds.get_fragments(filter=pc.field("request_time") > pa.scalar(mx + 1_000_000, pa.timestamp("us", tz="UTC")))))
    sample = {}
    if want:
        cols = ["trace_id", "experiment_id", "state", "execution_duration_ms", "request_preview", "response_preview", "request", "response", "tags", "trace_metadata"]
        for r in t.select(cols).to_pylist():
            if r["trace_id"] in want:
                r["tags"] = dict(r["tags"] or [])
                r["trace_metadata"] = dict(r["trace_metadata"] or [])
                sample[r["trace_id"]] = r
    # DuckDB (delta-kernel-rs): count, exact µs bounds, a point lookup, and whether it prunes
    # files with our stats.
    duck_count, duck_min, duck_max = con.execute(
        f"SELECT count(*), epoch_us(min(request_time)), epoch_us(max(request_time)) FROM {duck_scan(path)}"
    ).fetchone()
    probe = ids[len(ids) // 2] if ids else ""
    duck_probe = con.execute(
        f"SELECT trace_id, len(spans) FROM {duck_scan(path)} WHERE trace_id = ?", [probe]
    ).fetchall()
    duck_distinct = con.execute(f"SELECT count(DISTINCT trace_id) FROM {duck_scan(path)}").fetchone()[0]
    def files_scanned(where):
        plan = con.execute(f"EXPLAIN ANALYZE SELECT count(*) FROM {duck_scan(path)} WHERE {where}").fetchall()
        text = "\n".join(str(c) for row in plan for c in row)
        m = re.search(r"Scanning Files: (\d+)/(\d+)", text)
        return [int(m.group(1)), int(m.group(2))] if m else None

    max_exec = con.execute(f"SELECT max(execution_duration_ms) FROM {duck_scan(path)}").fetchone()[0]
    # Hex trace ids sort below 'g': a bound above every id and one above the longest duration.
    duck_skip = {
        "traceIdAboveMax": files_scanned("trace_id > 'g'"),
        "durationAboveMax": files_scanned(f"execution_duration_ms > {max_exec}"),
        "all": files_scanned("execution_duration_ms >= 0"),
    }
    return {
        "version": dt.version(),
        "protocol": [p.min_reader_version, p.min_writer_version, p.reader_features, p.writer_features],
        "rows": t.num_rows,
        "distinct": len(counts),
        "duplicates": sum(1 for v in counts.values() if v > 1),
        "digests": digests,
        "requestTimeType": str(t.schema.field("request_time").type),
        "minRequestUs": pc.min(rt).as_py(),
        "maxRequestUs": mx,
        "numRecordsSum": pc.sum(adds["num_records"]).as_py(),
        "files": adds.num_rows,
        "sqlCount": cnt_sql,
        "fragments": frags_all,
        "fragmentsAboveMax": frags_above,
        "timeTravelV0Rows": DeltaTable(path, version=0).to_pyarrow_table().num_rows,
        "timeTravelV1Rows": DeltaTable(path, version=1).to_pyarrow_table().num_rows if dt.version() >= 1 else None,
        "sample": sample,
        "duck": {
            "count": duck_count,
            "minUs": duck_min,
            "maxUs": duck_max,
            "distinct": duck_distinct,
            "probe": [probe, [list(r) for r in duck_probe]],
            "filesScanned": duck_skip,
        },
    }



if spec.get("traces"):
    out["traces"] = read_traces(spec["traces"], set(spec.get("sample", [])))
# More traces tables, by label (a test reading several tables in one process).
out["more"] = {label: read_traces(p, set()) for label, p in spec.get("more", {}).items()}

if spec.get("assessments"):
    path = spec["assessments"]
    dt = DeltaTable(path)
    t = dt.to_pyarrow_table()
    ct = t.column("create_time").cast(pa.int64()).to_pylist()
    rows = []
    for i, r in enumerate(t.drop(["create_time", "create_date"]).to_pylist()):
        r["metadata"] = dict(r["metadata"] or [])
        r["create_us"] = ct[i]
        rows.append(r)
    duck_count = con.execute(f"SELECT count(*) FROM {duck_scan(path)}").fetchone()[0]
    out["assessments"] = {"version": dt.version(), "rows": rows, "duckCount": duck_count}

print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
