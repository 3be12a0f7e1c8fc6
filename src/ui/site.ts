// The web UI's files as the admin server serves them: the page, its style sheet, its modules and
// the vendored chart library. Nothing is built ahead of time: the modules are the TypeScript
// files of client/, turned into JavaScript here by Node's own type stripping (erasable syntax
// only, as everywhere in src/; positions are kept, so the browser's line numbers are the
// source's). Each file is read and stripped once, on its first request, then served from memory
// with a content hash as ETag and a gzip copy, so a page load after the first costs 304s.
//
// No bundler and no framework: ~10 small modules, loaded as native ES modules, and uPlot (a
// dependency from the npm registry, loaded only by the pages that draw charts). Every asset is
// local: the page works with no network but the admin port.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export interface UiAsset {
  body: Buffer;
  /** gzip of body, when that is smaller. */
  gzip: Buffer | undefined;
  contentType: string;
  /** Strong ETag (quoted content hash). */
  etag: string;
}

export interface UiSite {
  /** The asset at a request path ('/' is the page), or undefined. */
  asset(path: string): UiAsset | undefined;
  /** Every path served (for tests and the size report). */
  paths(): string[];
}

/** Where the page loads its modules and vendored files from. */
export const UI_PREFIX = '/ui/';

/**
 * The pages' folder: next to this file when run from src/; from a build in dist/ (which
 * compiles the server side only, bin/scorecar.js prefers it) the pages stay in src/ui/client.
 */
function clientDir(): string {
  const here = fileURLToPath(new URL('./client/', import.meta.url));
  if (existsSync(join(here, 'index.html'))) return here;
  return fileURLToPath(new URL('../../src/ui/client/', import.meta.url));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  // Served stripped of their types: JavaScript to the browser.
  '.ts': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

type Strip = (code: string, opts: { mode: 'strip' }) => string;

/** Node's type stripper (node:module; present in the Node 24 the project pins). */
function stripper(): Strip {
  const fn = (nodeModule as unknown as { stripTypeScriptTypes?: Strip }).stripTypeScriptTypes;
  if (typeof fn !== 'function')
    throw new Error('this Node has no module.stripTypeScriptTypes: the web UI needs Node >= 22.13');
  return fn;
}

/** Files of client/ served under /ui/ (tsconfig.json and tests are not). */
function clientFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.(ts|css|svg)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .sort();
}

function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  // uPlot's package has no exports map: its dist files resolve as paths.
  const dist = join(require.resolve('uplot/package.json'), '..', 'dist');
  return {
    'vendor/uplot.js': join(dist, 'uPlot.iife.min.js'),
    'vendor/uplot.css': join(dist, 'uPlot.min.css'),
  };
}

function makeAsset(body: Buffer, contentType: string): UiAsset {
  const gz = gzipSync(body, { level: 9 });
  return {
    body,
    gzip: gz.length < body.length ? gz : undefined,
    contentType,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

export function createUiSite(opts: { dir?: string } = {}): UiSite {
  const dir = opts.dir ?? clientDir();
  const sources = new Map<string, string>();
  sources.set('/', join(dir, 'index.html'));
  for (const f of clientFiles(dir)) sources.set(`${UI_PREFIX}${f}`, join(dir, f));
  for (const [name, file] of Object.entries(vendorFiles())) sources.set(`${UI_PREFIX}${name}`, file);
  const cache = new Map<string, UiAsset>();

  const load = (file: string): UiAsset => {
    const ext = extname(file);
    let text = readFileSync(file);
    if (ext === '.ts') text = Buffer.from(stripper()(text.toString('utf8'), { mode: 'strip' }), 'utf8');
    return makeAsset(text, TYPES[ext === '.ts' ? '.ts' : ext] ?? 'application/octet-stream');
  };

  return {
    asset(path) {
      const p = path === '/index.html' ? '/' : path;
      const file = sources.get(p);
      if (file === undefined) return undefined;
      let a = cache.get(p);
      if (!a) {
        a = load(file);
        cache.set(p, a);
      }
      return a;
    },
    paths: () => [...sources.keys()],
  };
}
