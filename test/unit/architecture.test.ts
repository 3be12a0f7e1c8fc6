// The shape of src/, checked on every run so it cannot drift: each folder is a unit reached only
// through its index.ts, units form no cycle, every import points down a declared layer order, and
// nothing re-exports with `export *` (every public name is listed where it is exported). Then, at
// run time, the pure units load none of the heavy runtime pieces (SQLite, the QuickJS wasm
// sandbox, gRPC), so the SDK and the codecs stay cheap to import.
//
// Imports are read with the TypeScript parser (a dev dependency already), not with regular
// expressions, so a string or comment that looks like an import is never counted and every form
// is: import/export ... from, side-effect imports, import(), and import('x').T types.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SRC = join(ROOT, 'src');
const NODE = join(ROOT, 'node_modules/.bin/node');

/**
 * The layer order, lowest first. A unit may import only units of a LOWER layer (never its own
 * layer, never a higher one). Units: each folder of src/, each subfolder of src/scoring, and each
 * top-level file of src/ (named without .ts). Derived from the import graph as it is, grouped so
 * that each line reads as one level of the system.
 */
const LAYERS: readonly (readonly string[])[] = [
  // Shared by everything: the error table, logging, metrics, retry timing, clocks.
  ['util'],
  // Contracts and pure data: the stage contract, config schema, scorer definitions, OTLP codec;
  // and the PostgreSQL connection every shared store is built on.
  ['component', 'config', 'definitions', 'wire', 'postgres'],
  // Trace assembly: whole traces out of wire batches.
  ['assembly'],
  // What reads a whole trace (genai), and the stages at the edges of the data path.
  ['genai', 'receivers', 'exporters', 'assessments'],
  // Sampling and filters over the GenAI view; judge model providers.
  ['select', 'scoring/models'],
  // The scorer registry (validates filters with select); judges and the code sandbox.
  ['registry', 'scoring/judges', 'scoring/sandbox'],
  // The scoring stage: lanes, budgets, runner.
  ['scoring/engine'],
  // scoring's public face over its subfolders.
  ['scoring'],
  // Beside each other above scoring: the archive (Delta tables of traces and assessments, trace
  // search, backfills, which run scorers) and Kafka (the client module, job and assessment
  // topics, the worker, the Collector-format span receiver and exporter).
  ['archive', 'kafka'],
  // The admin API and its client; the data-path pipeline that wires every stage; the web UI's
  // files (served by the admin server, which the app hands them to: neither imports the other).
  ['api', 'sdk', 'pipeline', 'ui'],
  // MLflow compatibility: MLflow's REST API mounted on the admin server, the MLflow exporter
  // wired around the pipeline.
  ['mlflow'],
  // A running scorecar: pipeline + admin server + process concerns.
  ['app'],
  // Entry points: the command line and the package's root export.
  ['cli', 'index'],
];

/**
 * Modules that must stay light to import (the SDK through its package export, as users import
 * it), and the heavy pieces they must not load.
 */
const PURE: readonly (readonly [unit: string, specifier: string])[] = [
  ...['wire', 'definitions', 'select', 'genai'].map(
    (unit) => [unit, pathToFileURL(join(SRC, unit, 'index.ts')).href] as const,
  ),
  ['sdk', 'scorecar/sdk'],
];
const HEAVY: readonly { name: string; url: RegExp; builtin?: RegExp }[] = [
  { name: 'node:sqlite', url: /^node:sqlite$/, builtin: /^(?:NativeModule|Internal Binding) sqlite$/ },
  { name: 'quickjs-emscripten', url: /\/node_modules\/(?:quickjs-emscripten[^/]*|@jitl\/[^/]+)\// },
  { name: '@grpc/grpc-js', url: /\/node_modules\/@grpc\// },
];

interface Import {
  from: string; // importing file, relative to src/ with '/'
  to: string; // imported file, relative to src/ with '/' (may start with '../' when outside)
  typeOnly: boolean;
  line: number;
}

function posix(p: string): string {
  return p.split(sep).join('/');
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return walk(p);
    return d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

const FILES = walk(SRC);

/** Every relative import of every file in src/, and every `export *`. */
function scan(): { imports: Import[]; exportStars: string[] } {
  const imports: Import[] = [];
  const exportStars: string[] = [];
  for (const file of FILES) {
    const rel = posix(relative(SRC, file));
    const sf = ts.createSourceFile(
      file,
      readFileSync(file, 'utf8'),
      ts.ScriptTarget.Latest,
      true,
      ts.ScriptKind.TS,
    );
    const add = (spec: ts.Node | undefined, typeOnly: boolean, at: ts.Node): void => {
      if (!spec || !ts.isStringLiteralLike(spec) || !spec.text.startsWith('.')) return;
      const line = sf.getLineAndCharacterOfPosition(at.getStart(sf)).line + 1;
      imports.push({
        from: rel,
        to: posix(relative(SRC, resolve(dirname(file), spec.text))),
        typeOnly,
        line,
      });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node)) {
        const c = node.importClause;
        const named =
          c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
        const typeOnly =
          c !== undefined &&
          (c.isTypeOnly ||
            (!c.name && named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)));
        add(node.moduleSpecifier, typeOnly, node);
      } else if (ts.isExportDeclaration(node)) {
        if (!node.exportClause || ts.isNamespaceExport(node.exportClause)) {
          const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
          exportStars.push(`${rel}:${line}: ${node.getText(sf)}`);
        }
        add(node.moduleSpecifier, node.isTypeOnly, node);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        add(node.arguments[0], false, node);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
        add(node.argument.literal, true, node);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { imports, exportStars };
}

/** The unit a file belongs to: its folder, a subfolder of scoring, or the top-level file itself. */
function unitOf(rel: string): string {
  if (rel.startsWith('../')) return `outside src (${rel})`;
  const parts = rel.split('/');
  if (parts.length === 1) return parts[0]!.replace(/\.ts$/, '');
  if (parts[0] === 'scoring' && parts.length > 2) return `scoring/${parts[1]}`;
  return parts[0]!;
}

/**
 * The one file of a unit other units may import: a folder's index.ts, or the top-level file
 * itself (app.ts, pipeline.ts and index.ts compose the folders and are imported whole).
 */
function entryOf(unit: string): string {
  return FILES.some((f) => posix(relative(SRC, f)) === `${unit}.ts`) ? `${unit}.ts` : `${unit}/index.ts`;
}

const { imports, exportStars } = scan();
const crossing = imports.filter((i) => unitOf(i.from) !== unitOf(i.to));
const where = (i: Import) => `src/${i.from}:${i.line} -> src/${i.to}${i.typeOnly ? ' (type only)' : ''}`;

describe('src/ import structure', () => {
  it('the import scan sees the code (sanity: it finds imports, crossing ones and type-only ones)', () => {
    // Guards the rules below against passing because the scan found nothing.
    expect(FILES.length).toBeGreaterThan(50);
    expect(crossing.length).toBeGreaterThan(50);
    expect(crossing.some((i) => i.typeOnly)).toBe(true);
    expect(crossing.some((i) => i.from === 'pipeline.ts' && i.to === 'receivers/index.ts')).toBe(true);
  });

  it('every import resolves to a file', () => {
    const broken = imports.filter((i) => !existsSync(join(SRC, i.to))).map(where);
    expect(broken).toEqual([]);
  });

  it('(a) reaches another folder only through its index.ts', () => {
    const deep = crossing.filter((i) => i.to !== entryOf(unitOf(i.to))).map(where);
    expect(deep, 'import the folder index instead (export the name there if needed)').toEqual([]);
  });

  it('(b) has no import cycle between folders (type-only imports included)', () => {
    const graph = new Map<string, Set<string>>();
    for (const i of crossing) {
      const a = unitOf(i.from);
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(unitOf(i.to));
    }
    const cycles = stronglyConnected(graph)
      .filter((c) => c.length > 1)
      .map((c) => {
        const members = new Set(c);
        const edges = crossing.filter((i) => members.has(unitOf(i.from)) && members.has(unitOf(i.to)));
        return `${c.join(' <-> ')}:\n    ${edges.map(where).join('\n    ')}`;
      });
    expect(cycles).toEqual([]);
  });

  it('(c) imports only units of a lower layer', () => {
    const layer = new Map<string, number>();
    LAYERS.forEach((units, n) => {
      for (const u of units) layer.set(u, n);
    });
    const units = new Set(FILES.map((f) => unitOf(posix(relative(SRC, f)))));
    const undeclared = [...units].filter((u) => !layer.has(u));
    expect(undeclared, 'units missing from LAYERS in this test: give each one its place').toEqual([]);
    const stale = [...layer.keys()].filter((u) => !units.has(u));
    expect(stale, 'LAYERS names units that no longer exist').toEqual([]);
    const upward = crossing
      .filter((i) => !((layer.get(unitOf(i.to)) ?? Number.POSITIVE_INFINITY) < layer.get(unitOf(i.from))!))
      .map(
        (i) =>
          `${where(i)}: ${unitOf(i.from)} (layer ${layer.get(unitOf(i.from))}) may not import ${unitOf(i.to)} (layer ${layer.get(unitOf(i.to))})`,
      );
    expect(upward).toEqual([]);
  });

  it('(d) has no `export *` (every re-exported name is listed)', () => {
    expect(exportStars).toEqual([]);
  });
});

/** Tarjan's strongly connected components, each sorted, for a readable report. */
function stronglyConnected(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      out.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return out;
}

// A fresh Node process imports one module with a resolve hook recording every module resolved
// (and which module asked for it), then prints that list and the builtins Node loaded. The hook
// (module.registerHooks) runs in the importing thread and sees import and require alike; the
// builtin list also catches process.getBuiltinModule, which bypasses resolution.
const PROBE = `
import { registerHooks } from 'node:module';
const parents = new Map();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const r = nextResolve(specifier, context);
    if (!parents.has(r.url)) parents.set(r.url, context.parentURL ?? null);
    return r;
  },
});
const before = new Set(process.moduleLoadList);
await import(process.env.SCORECAR_PROBE);
process.stdout.write(JSON.stringify({
  modules: [...parents],
  builtins: process.moduleLoadList.filter((m) => !before.has(m)),
}));
`;

interface Probe {
  modules: [string, string | null][];
  builtins: string[];
}

/** Imports `specifier` (a URL, or the package's own export, resolved from the project root). */
async function probe(specifier: string): Promise<Probe> {
  const { stdout } = await promisify(execFile)(
    NODE,
    ['--disable-warning=ExperimentalWarning', '--input-type=module', '--eval', PROBE],
    { cwd: ROOT, env: { ...process.env, SCORECAR_PROBE: specifier }, maxBuffer: 64 << 20 },
  );
  return JSON.parse(stdout) as Probe;
}

/** A loaded module as a short name: src/… for ours, the package name for dependencies. */
function short(url: string): string {
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(posix(path));
  return pkg ? pkg[1]! : posix(relative(ROOT, path));
}

describe('pure modules stay light at run time', () => {
  it.each(PURE)('importing src/%s/index.ts loads no SQLite, QuickJS or gRPC', async (unit, specifier) => {
    const { modules, builtins } = await probe(specifier);
    // Sanity: the hook saw the module itself and what it imports.
    expect(modules.some(([url]) => url.endsWith(`/src/${unit}/index.ts`))).toBe(true);
    const parent = new Map(modules);
    const chain = (url: string): string => {
      const names: string[] = [];
      for (let u: string | null | undefined = url; u; u = parent.get(u)) {
        // A package's own files are one step: "zod", not "zod -> zod -> zod".
        if (names[0] !== short(u)) names.unshift(short(u));
      }
      return names.join(' -> ');
    };
    const loaded: string[] = [];
    for (const heavy of HEAVY) {
      // The first module of a heavy package resolved is where it came in: one chain is enough.
      const first = modules.find(([url]) => heavy.url.test(url));
      if (first) loaded.push(`${heavy.name}: ${chain(first[0])}`);
      const builtin = builtins.find((b) => heavy.builtin?.test(b));
      if (builtin) loaded.push(`${heavy.name}: builtin '${builtin}' loaded`);
    }
    const everything = [...new Set(modules.map(([url]) => short(url)))].sort();
    expect(loaded, `src/${unit}/index.ts loaded:\n  ${everything.join('\n  ')}`).toEqual([]);
  });
});
