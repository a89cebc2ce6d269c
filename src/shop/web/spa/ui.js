// Small pieces every page uses: headings that take focus, messages, form fields with their errors.

import { html, useEffect, useRef } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { navigation } from './router.js';

/** The API's wording, starting with a capital letter. */
export const sentence = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);

/** The page's <h1>; it takes focus when the page opens, so screen readers announce the new page. */
export function PageHeading({ children, title, id, className = '' }) {
  const ref = useRef(null);
  useEffect(() => {
    document.title = `${title || ref.current?.textContent.trim() || 'Shop'} · Shop`;
  }, [title, children]);
  useEffect(() => {
    // after the first page, moving focus here tells a screen reader that a new page has opened
    if (navigation.moved) ref.current?.focus({ preventScroll: true });
  }, []);
  return html`<h1 ref=${ref} id=${id} tabindex="-1" class=${className || undefined}>${children}</h1>`;
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${label}</p>`;
}

/** A message that is read out as soon as it appears. */
export function Alert({ kind = 'error', title, children, focus = false }) {
  const ref = useRef(null);
  useEffect(() => {
    if (focus) ref.current?.focus();
  }, [focus, title]);
  return html`<div ref=${ref} class=${`alert alert--${kind}`} role=${kind === 'error' ? 'alert' : 'status'}
    tabindex=${focus ? '-1' : undefined}>
    ${title && html`<p class="alert__title">${title}</p>`}
    ${children}
  </div>`;
}

/** An API problem as a message: its detail, and a line for every field error not shown beside a field. */
export function ProblemMessage({ problem, shown = [], title, focus = false, children }) {
  if (!problem) return null;
  const rest = problem.errors.filter((e) => !shown.includes(e.field));
  return html`<${Alert} title=${title || sentence(problem.detail)} focus=${focus}>
    ${title && html`<p>${sentence(problem.detail)}</p>`}
    ${rest.length > 0 && html`<ul>${rest.map((e) => html`<li key=${e.field}>${e.message}</li>`)}</ul>`}
    ${children}
  <//>`;
}

/** "There is a problem": links to each field the shop complained about. */
export function ErrorSummary({ problem, fields, title, describe = (e) => e.message }) {
  const ref = useRef(null);
  useEffect(() => {
    ref.current?.focus();
  }, [problem]);
  if (!problem) return null;
  const linked = problem.errors.filter((e) => fields[e.field]);
  const other = problem.errors.filter((e) => !fields[e.field]);
  const jump = (event, field) => {
    event.preventDefault(); // a real "#id" would be taken for a route
    document.getElementById(fields[field])?.focus();
  };
  return html`<div ref=${ref} class="alert alert--error error-summary" role="alert" tabindex="-1"
    aria-labelledby="error-summary-title">
    <p class="alert__title" id="error-summary-title">${title || sentence(problem.detail)}</p>
    ${title && html`<p>${sentence(problem.detail)}</p>`}
    ${(linked.length > 0 || other.length > 0) && html`<ul>
      ${linked.map((e) => html`<li key=${e.field}>
        <a href=${`#${fields[e.field]}`} onClick=${(event) => jump(event, e.field)}>${describe(e)}</a></li>`)}
      ${other.map((e) => html`<li key=${e.field}>${e.field}: ${describe(e)}</li>`)}
    </ul>`}
  </div>`;
}

/** A labelled input with an optional hint and the shop's error for it. */
export function TextField({ id, label, value, onInput, error, hint, optional = false, type = 'text',
  className = '', ...rest }) {
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  return html`<div class=${`field ${error ? 'field--error' : ''} ${className}`.trim()}>
    <label for=${id}>${label}${optional && html` <span class="field__optional">(optional)</span>`}</label>
    ${hint && html`<p class="field__hint" id=${`${id}-hint`}>${hint}</p>`}
    ${error && html`<p class="field__error" id=${`${id}-error`}><span class="visually-hidden">Error: </span>${error}</p>`}
    <input id=${id} name=${id} type=${type} value=${value} aria-invalid=${error ? 'true' : undefined}
      aria-describedby=${described} onInput=${(e) => onInput(e.currentTarget.value)} ...${rest} />
  </div>`;
}

export function SelectField({ id, label, value, onChange, error, options, hint }) {
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  return html`<div class=${`field ${error ? 'field--error' : ''}`.trim()}>
    <label for=${id}>${label}</label>
    ${hint && html`<p class="field__hint" id=${`${id}-hint`}>${hint}</p>`}
    ${error && html`<p class="field__error" id=${`${id}-error`}><span class="visually-hidden">Error: </span>${error}</p>`}
    <select id=${id} name=${id} value=${value} aria-invalid=${error ? 'true' : undefined} aria-describedby=${described}
      onChange=${(e) => onChange(e.currentTarget.value)}>
      ${options.map(([v, text]) => html`<option key=${v} value=${v}>${text}</option>`)}
    </select>
  </div>`;
}

export function NotFound({ what = 'page', children }) {
  return html`<section class="empty">
    <${PageHeading}>We could not find that ${what}<//>
    ${children || html`<p>It may have been moved or taken out of the shop.</p>`}
    <p><a class="button" href="#/">Back to the shop</a></p>
  </section>`;
}
