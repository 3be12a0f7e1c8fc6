// Template syntax of the two user-written judges:
// - prompt judges (MLflow custom_prompt_judge): categories written `[[label]]`, variables
//   `{{request}}` and `{{response}}`;
// - instructions judges (MLflow make_judge): variables `{{ inputs }}`, `{{ outputs }}`,
//   `{{ expectations }}`, `{{ trace }}`.
// Spaces inside the braces are optional in both.

export const CHOICE_PATTERN = /\[\[([\w ]+)\]\]/g;
export const VARIABLE_PATTERN = /\{\{\s*([^{}]*?)\s*\}\}/g;

export const PROMPT_VARIABLES = ['request', 'response'] as const;
export const INSTRUCTION_VARIABLES = ['inputs', 'outputs', 'expectations', 'trace'] as const;

/** The distinct `[[label]]` categories in order of first appearance (labels trimmed). */
export function templateChoices(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(CHOICE_PATTERN)) {
    const label = m[1]!.trim();
    if (label !== '' && !out.includes(label)) out.push(label);
  }
  return out;
}

/** The distinct `{{ name }}` variables in order of first appearance. */
export function templateVariables(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(VARIABLE_PATTERN)) {
    const name = m[1]!;
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * Substitutes `{{ name }}` with values[name]; unknown names are left as written (validation
 * refuses them before a template is ever rendered). A single pass, so substituted text that
 * itself contains `{{ ... }}` is never expanded again.
 */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(VARIABLE_PATTERN, (whole, name: string) =>
    Object.hasOwn(values, name) ? values[name]! : whole,
  );
}
