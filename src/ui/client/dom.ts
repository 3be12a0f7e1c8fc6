// Tiny DOM helpers: build elements from a tag, attributes and children (no framework, no
// templates, no innerHTML: every text goes in as a text node, so trace data can never become
// markup).
export type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces an element's children. */
export function render(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: the label names the control for screen readers and clicks. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || uid('f');
  control.id = id;
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function fmtNumber(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en');
  return Number(n.toFixed(digits)).toString();
}

export function fmtPercent(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : `${(n * 100).toFixed(1)}%`;
}

export function fmtTime(iso: string | number): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? String(iso)
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A status message in a live region, so screen readers hear what an action did. */
export function announce(text: string, kind: 'ok' | 'error' = 'ok'): void {
  const el = document.getElementById('toast');
  if (!el) return;
  el.className = `toast ${kind}`;
  el.textContent = text;
}

/**
 * A modal confirmation (native <dialog>: focus is trapped and Escape cancels). Resolves true
 * when the person confirms.
 */
export function confirmDialog(
  title: string,
  body: Child,
  confirmLabel: string,
  danger = true,
): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title' });
    const done = (v: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    render(
      dlg,
      h('h2', { id: 'dlg-title' }, title),
      h('div', {}, body),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => done(false) }, 'Cancel'),
        h(
          'button',
          { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => done(true) },
          confirmLabel,
        ),
      ),
    );
    dlg.addEventListener('cancel', () => done(false));
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

/** Debounces a function (live validation while typing). */
export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): (...a: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...a: A) => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

/**
 * Shows where in a one-line text an error is: the text with a caret under the character
 * (filter strings report a 0-based position).
 */
export function caretAt(text: string, position: number): HTMLElement {
  const p = Math.max(0, Math.min(position, text.length));
  return h('pre', { class: 'caret', 'aria-hidden': 'true' }, `${text}\n${' '.repeat(p)}^`);
}

/**
 * Names each body cell after its column (data-label), so the phone layout, where rows become
 * cards and the header row is hidden, can still say what each value is.
 */
export function labelCells(table: HTMLTableElement): HTMLTableElement {
  const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent ?? '');
  for (const tr of table.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((cell, i) => {
      if (names[i]) cell.setAttribute('data-label', names[i]!);
    });
  }
  return table;
}
