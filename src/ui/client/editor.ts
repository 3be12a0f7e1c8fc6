// The scorer definition editor: one form for every definition type (built-in judge, guidelines,
// prompt judge, instructions judge, code), checked live through POST /scorers:validate, with each
// message shown under the field it is about (its path) and, for code, at its line.
import { type CheckError, api } from './api.ts';
import { debounce, field, h, render, uid } from './dom.ts';

export const TYPES = [
  ['builtin', 'Built-in judge'],
  ['guidelines', 'Guidelines'],
  ['prompt', 'Prompt judge'],
  ['judge', 'Instructions judge'],
  ['code', 'Code'],
] as const;

const BUILTIN = [
  'safety',
  'relevance_to_query',
  'correctness',
  'guidelines',
  'expectations_guidelines',
  'retrieval_groundedness',
  'retrieval_relevance',
  'retrieval_sufficiency',
  'equivalence',
];

const EXAMPLES: Record<string, string> = {
  code: "(ctx) => String(ctx.outputs ?? '').length > 0",
  prompt:
    'Is the response polite?\n[[yes]] polite\n[[no]] rude\n\nRequest: {{request}}\nResponse: {{response}}',
  judge: 'Does {{ outputs }} answer {{ inputs }} correctly and completely? Answer yes or no.',
};

export interface DefinitionEditor {
  el: HTMLElement;
  /** The definition as typed (not yet validated). */
  value(): Record<string, unknown>;
  /** Shows errors under their fields; returns how many could not be placed on a field. */
  showErrors(errors: readonly CheckError[]): CheckError[];
  /** Validates now through the API. */
  check(): Promise<CheckError[]>;
}

/** A textarea with line numbers, so a code error's line can be pointed at. */
function codeArea(
  id: string,
  rows: number,
): { wrap: HTMLElement; area: HTMLTextAreaElement; mark(line?: number): void } {
  const area = h('textarea', {
    id,
    rows,
    spellcheck: 'false',
    class: 'code',
    autocapitalize: 'off',
  }) as HTMLTextAreaElement;
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  let marked: number | undefined;
  const draw = () => {
    const n = Math.max(area.value.split('\n').length, rows);
    render(
      gutter,
      ...Array.from({ length: n }, (_, i) => h('div', { class: i + 1 === marked ? 'bad' : '' }, i + 1)),
    );
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener('input', draw);
  area.addEventListener('scroll', () => {
    gutter.scrollTop = area.scrollTop;
  });
  draw();
  return {
    wrap: h('div', { class: 'codewrap' }, gutter, area),
    area,
    mark(line) {
      marked = line;
      draw();
    },
  };
}

export function definitionEditor(onValidity?: (errors: CheckError[]) => void): DefinitionEditor {
  const typeSel = h(
    'select',
    {},
    ...TYPES.map(([v, l]) => h('option', { value: v }, l)),
  ) as HTMLSelectElement;
  typeSel.value = 'code';
  const judgeSel = h('select', {}, ...BUILTIN.map((j) => h('option', { value: j }, j))) as HTMLSelectElement;
  const model = h('input', {
    type: 'text',
    placeholder: 'default: scoring.defaultModel, e.g. openai:/gpt-4.1-mini',
    autocomplete: 'off',
  }) as HTMLInputElement;
  const guidelines = h('textarea', { rows: 4, placeholder: 'One guideline per line' }) as HTMLTextAreaElement;
  const template = h('textarea', { rows: 6 }) as HTMLTextAreaElement;
  template.value = EXAMPLES.prompt!;
  const numeric = h('input', {
    type: 'text',
    placeholder: '{"yes": 1, "no": 0} (optional)',
    autocomplete: 'off',
  }) as HTMLInputElement;
  const instructions = h('textarea', { rows: 5 }) as HTMLTextAreaElement;
  instructions.value = EXAMPLES.judge!;
  const fvt = h(
    'select',
    {},
    h('option', { value: '' }, '(judge decides)'),
    ...['yes_no', 'bool', 'number', 'string'].map((v) => h('option', { value: v }, v)),
  ) as HTMLSelectElement;
  const code = codeArea(uid('src'), 6);
  code.area.value = EXAMPLES.code!;
  code.area.dispatchEvent(new Event('input'));

  // Each field with the definition path its messages carry.
  const slots: Array<{ path: string; types: string[]; el: HTMLElement; control: HTMLElement }> = [];
  const slot = (
    path: string,
    types: string[],
    label: string,
    control: HTMLElement,
    hint?: string,
    wrap?: HTMLElement,
  ) => {
    const f = field(label, control, hint);
    if (wrap) {
      // The label and hint stay wired to the control; the wrap (line numbers) takes its place.
      f.replaceChild(wrap, control);
      wrap.appendChild(control);
    }
    slots.push({ path, types, el: f, control });
    return f;
  };
  const body = h(
    'div',
    { class: 'defn' },
    slot('definition.type', ['*'], 'Type', typeSel),
    slot('definition.judge', ['builtin'], 'Judge', judgeSel),
    slot(
      'definition.guidelines',
      ['guidelines', 'builtin'],
      'Guidelines',
      guidelines,
      'One per line. Built-in judges use them only for judge = guidelines.',
    ),
    slot(
      'definition.promptTemplate',
      ['prompt'],
      'Prompt template',
      template,
      '[[choice]] categories; {{request}} and {{response}} variables.',
    ),
    slot('definition.numericValues', ['prompt'], 'Numeric values (JSON)', numeric),
    slot(
      'definition.instructions',
      ['judge'],
      'Instructions',
      instructions,
      'Use {{ inputs }}, {{ outputs }}, {{ expectations }} or {{ trace }}.',
    ),
    slot('definition.feedbackValueType', ['judge'], 'Feedback value type', fvt),
    slot(
      'definition.source',
      ['code'],
      'Source',
      code.area,
      'A JavaScript function (ctx) => value; ctx = {inputs, outputs, expectations, trace}.',
      code.wrap,
    ),
    slot('definition.model', ['builtin', 'guidelines', 'prompt', 'judge'], 'Judge model', model),
  );
  const showFields = () => {
    for (const s of slots) s.el.hidden = !(s.types.includes('*') || s.types.includes(typeSel.value));
  };
  showFields();

  const value = (): Record<string, unknown> => {
    const t = typeSel.value;
    const d: Record<string, unknown> = { type: t };
    const m = model.value.trim();
    const lines = guidelines.value
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    if (t === 'builtin') {
      d.judge = judgeSel.value;
      if (judgeSel.value === 'guidelines' || lines.length > 0) d.guidelines = lines;
    } else if (t === 'guidelines') d.guidelines = lines;
    else if (t === 'prompt') {
      d.promptTemplate = template.value;
      if (numeric.value.trim()) {
        try {
          d.numericValues = JSON.parse(numeric.value);
        } catch {
          // Sent as text: the API names the field and says what it expects.
          d.numericValues = numeric.value;
        }
      }
    } else if (t === 'judge') {
      d.instructions = instructions.value;
      if (fvt.value) d.feedbackValueType = fvt.value;
    } else if (t === 'code') d.source = code.area.value;
    if (m && t !== 'code') d.model = m;
    return d;
  };

  const showErrors = (errors: readonly CheckError[]): CheckError[] => {
    const unplaced: CheckError[] = [];
    for (const s of slots) {
      s.el.querySelector('.field-error')?.remove();
      s.control.removeAttribute('aria-invalid');
    }
    code.mark(undefined);
    for (const e of errors) {
      // The deepest field whose path prefixes the error's ('definition.guidelines[2]' → guidelines).
      const s = slots
        .filter(
          (x) => e.path === x.path || e.path.startsWith(`${x.path}.`) || e.path.startsWith(`${x.path}[`),
        )
        .pop();
      if (!s || s.el.hidden) {
        unplaced.push(e);
        continue;
      }
      const id = uid('err');
      s.el.appendChild(
        h(
          'p',
          { class: 'field-error', id, role: 'alert' },
          e.line !== undefined ? `Line ${e.line}: ${e.message}` : e.message,
        ),
      );
      s.control.setAttribute('aria-invalid', 'true');
      s.control.setAttribute('aria-errormessage', id);
      if (e.line !== undefined && s.path === 'definition.source') code.mark(e.line);
    }
    return unplaced;
  };

  let seq = 0;
  const check = async (): Promise<CheckError[]> => {
    const mine = ++seq;
    const r = await api<{ valid: boolean; errors: CheckError[] }>('/scorers:validate', {
      method: 'POST',
      body: { definition: value() },
    });
    if (mine !== seq) return r.errors; // a newer check is on its way
    showErrors(r.errors);
    onValidity?.(r.errors);
    return r.errors;
  };
  const live = debounce(() => void check().catch(() => {}), 300);
  body.addEventListener('input', live);
  typeSel.addEventListener('change', () => {
    showFields();
    live();
  });
  return { el: body, value, showErrors, check };
}
