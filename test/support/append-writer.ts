// A separate writer process for the concurrent-writers test: appends `commits` commits of `rows`
// trace rows each to one Delta traces table through scorecar's own TableWriter, as another
// scorecar replica would.
//   node test/support/append-writer.ts <tablePath> <writerName> <commits> <rows>
import { TableWriter } from '../../src/archive/index.ts';

const [root, name, commits, rows] = process.argv.slice(2) as [string, string, string, string];
const w = await TableWriter.open('traces', root, `scorecar-test ${name}`);
const t0 = Date.UTC(2025, 0, 1) * 1000;
for (let c = 0; c < Number(commits); c++) {
  for (let r = 0; r < Number(rows); r++) {
    const id = Buffer.from(`${name}:${c}:${r}`.padEnd(16, '.')).toString('hex').slice(0, 32).padEnd(32, '0');
    w.add({ trace_id: id, experiment_id: name, request_time: t0 + c * 1000 + r, state: 'OK', execution_duration_ms: BigInt(r), spans: [] }, '2025-01-01', 0, Date.now());
  }
  const rep = await w.flush(name, Date.now());
  if (rep.error) throw new Error(rep.error);
}
process.stdout.write(`${name} done\n`);
