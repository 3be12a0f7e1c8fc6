// Helpers of the web UI tests: traces of every recorded convention re-timed to now (so the UI's
// time ranges hold them), and page audits a person would otherwise do by eye (contrast, labels,
// overflow at phone width).
import { createHash } from 'node:crypto';
import { tracesFromRequest } from '../../src/assembly/index.ts';
import { jsonToProtobuf } from '../../src/wire/index.ts';
import { ALL_FIXTURES, loadFixture } from './fixtures.ts';

type Doc = { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };

/**
 * One OTLP request with every recorded fixture once, under fresh trace ids (seeded), each
 * trace moved in time so that it ends `agoMs` before now. Returns the body and its trace ids.
 */
export function fixturesNow(seed: string, agoMs = 0): { body: Buffer; traceIds: string[] } {
  const nowNs = BigInt(Date.now() - agoMs) * 1_000_000n;
  const resourceSpans: unknown[] = [];
  for (const [fi, f] of ALL_FIXTURES.entries()) {
    const doc = structuredClone(loadFixture(f.convention, f.name)) as Doc;
    let last = 0n;
    for (const rs of doc.resourceSpans)
      for (const ss of rs.scopeSpans)
        for (const sp of ss.spans)
          if (BigInt(sp.endTimeUnixNano as string) > last) last = BigInt(sp.endTimeUnixNano as string);
    const shift = nowNs - last;
    for (const rs of doc.resourceSpans) {
      for (const ss of rs.scopeSpans) {
        for (const sp of ss.spans) {
          sp.traceId = createHash('sha256')
            .update(`${seed}:${fi}:${sp.traceId as string}`)
            .digest('hex')
            .slice(0, 32);
          sp.startTimeUnixNano = String(BigInt(sp.startTimeUnixNano as string) + shift);
          sp.endTimeUnixNano = String(BigInt(sp.endTimeUnixNano as string) + shift);
          for (const ev of (sp.events as Array<Record<string, unknown>> | undefined) ?? []) {
            if (ev.timeUnixNano !== undefined)
              ev.timeUnixNano = String(BigInt(ev.timeUnixNano as string) + shift);
          }
        }
      }
      resourceSpans.push(rs);
    }
  }
  const body = jsonToProtobuf('traces', JSON.stringify({ resourceSpans }));
  return { body, traceIds: tracesFromRequest(body).map((t) => t.traceId) };
}

/**
 * Runs in the page: every visible element with its own text whose colour has less than 4.5:1
 * contrast (WCAG AA) against the first opaque background behind it. Returned as descriptions.
 */
export const CONTRAST_AUDIT = `(() => {
  const rgb = (s) => { const m = s.match(/[\\d.]+/g) || []; return m.map(Number); };
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c; } return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.checkVisibility || !el.checkVisibility()) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!own || el.closest('[aria-hidden="true"]') || el.matches('option, .u-legend *, .u-axis *, .chart *')) continue;
    const cs = getComputedStyle(el);
    if (el.matches(':disabled, :disabled *')) continue;
    const fg = rgb(cs.color); const bg = bgOf(el);
    const a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName.toLowerCase() + '.' + el.className + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
  }
  return bad;
})()`;

/** Runs in the page: form controls without an accessible name (label, aria-label(ledby), title). */
export const LABEL_AUDIT = `(() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.checkVisibility() && el.type !== 'hidden')
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map((el) => el.outerHTML.slice(0, 120)))()`;

/** Runs in the page: how far the page is wider than the viewport (0 = no sideways scrolling). */
export const OVERFLOW = '(() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth))()';
