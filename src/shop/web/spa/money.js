// Money as the API gives it ({amount: "19.99", currency: "EUR"}), shown, never calculated.

import { html } from './vendor/htm-preact-standalone-3.1.1.module.js';

/** "€19.99" in the reader's language, with exactly the digits the API sent (the amount stays a string). */
export function formatMoney(value) {
  if (!value) return '';
  const { amount, currency } = value;
  const digits = (String(amount).split('.')[1] || '').length;
  try {
    return new Intl.NumberFormat(undefined, {
      style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
    }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

/** A <data> element: the exact amount for machines, the formatted one for people. */
export function Money({ value, minus = false, className = '' }) {
  if (!value) return null;
  return html`<data class=${`money ${className}`.trim()} value=${value.amount} data-currency=${value.currency}
    >${minus ? '−\u2009' : ''}${formatMoney(value)}</data>`;
}
