// Checkout: contact, address, delivery and payment; the shop prices, reserves and charges, this page shows.

import { html, useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem, get, post } from './api.js';
import { CartTotals } from './cart.js';
import { useCart } from './cart-state.js';
import { Money } from './money.js';
import { navigate } from './router.js';
import { checkoutKey, forgetCheckoutKey, rememberOrder } from './storage.js';
import {
  ErrorSummary, Loading, PageHeading, SelectField, TextField,
} from './ui.js';

const COUNTRIES = [['AT', 'Austria'], ['BE', 'Belgium'], ['CA', 'Canada'], ['CH', 'Switzerland'],
  ['DE', 'Germany'], ['DK', 'Denmark'], ['ES', 'Spain'], ['FI', 'Finland'], ['FR', 'France'],
  ['GB', 'United Kingdom'], ['IE', 'Ireland'], ['IT', 'Italy'], ['NL', 'Netherlands'], ['NO', 'Norway'],
  ['PL', 'Poland'], ['PT', 'Portugal'], ['SE', 'Sweden'], ['US', 'United States']];
// the test gateway's cards; no card number is ever typed here or sent anywhere
const CARDS = [['tok_visa', 'Visa test card'], ['tok_mastercard', 'Mastercard test card'],
  ['tok_threeDSecure', 'Test card that asks the bank to confirm (3-D Secure)'],
  ['tok_chargeDeclined', 'Test card that is declined']];
const DECLINES = { card_declined: 'The card was declined.', insufficient_funds: 'The card has insufficient funds.' };
const FORM = 'shop.checkout-form';
const ADDRESS = ['name', 'line1', 'line2', 'postal_code', 'city', 'region', 'country', 'phone'];
const BLANK = {
  email: '', name: '', line1: '', line2: '', postal_code: '', city: '', region: '', country: 'DE', phone: '',
  shipping_method: '', token: 'tok_visa',
};
// where each field the API may name is on this page
const FIELDS = {
  email: 'checkout-email',
  ...Object.fromEntries(ADDRESS.map((f) => [`shipping_address.${f}`, `checkout-${f}`])),
  shipping_method: 'checkout-method-0',
  'payment.token': 'checkout-card-0',
};

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function remembered() {
  try {
    return { ...BLANK, ...JSON.parse(sessionStorage.getItem(FORM) || '{}'), token: BLANK.token };
  } catch {
    return { ...BLANK };
  }
}

/** POST /checkout with an Idempotency-Key; a request the shop is still working on is asked again. */
async function placeOrder(body) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const { status, data } = await post('/api/v1/checkout', body, {
        headers: { 'Idempotency-Key': checkoutKey(body) },
      });
      forgetCheckoutKey();
      return { status, order: data };
    } catch (problem) {
      if (!(problem instanceof ApiProblem)) throw problem;
      // an answer the shop stored for this key is final; anything else may be retried with the same key
      const final = problem.headers.has('Idempotent-Replayed');
      if (final) forgetCheckoutKey();
      if (!final && problem.status === 409 && attempt < 5) {
        await sleep(1000);
      } else {
        throw problem;
      }
    }
  }
}

function ShippingMethods({ country, value, onChange, error }) {
  const [methods, setMethods] = useState(null);
  useEffect(() => {
    let current = true;
    get(`/api/v1/shipping-methods?country=${encodeURIComponent(country)}`)
      .then(({ data }) => {
        if (!current) return;
        setMethods(data.items);
        if (!data.items.some((m) => m.code === value)) onChange(data.items[0]?.code || '');
      })
      .catch(() => current && setMethods([]));
    return () => { current = false; };
  }, [country]);

  return html`<fieldset class=${`choices ${error ? 'field--error' : ''}`}
    aria-describedby=${error ? 'checkout-method-error' : undefined}>
    <legend>Delivery</legend>
    ${error && html`<p class="field__error" id="checkout-method-error">${error}</p>`}
    ${methods === null && html`<${Loading} label="Loading delivery options…" />`}
    ${methods?.length === 0 && html`<p>The shop does not deliver to this country.</p>`}
    ${methods?.map((m, i) => html`<div class="choice" key=${m.code}>
      <input type="radio" name="shipping_method" id=${`checkout-method-${i}`} value=${m.code}
        checked=${m.code === value} onChange=${() => onChange(m.code)} />
      <label for=${`checkout-method-${i}`}>
        <span class="choice__title">${m.name}</span>
        <span class="choice__detail">
          ${m.kind === 'weight' ? 'from ' : ''}<${Money} value=${m.price} />
          ${m.free_above && html` · free from <${Money} value=${m.free_above} />`}
        </span>
      </label>
    </div>`)}
  </fieldset>`;
}

function Payment({ value, onChange, error }) {
  return html`<fieldset class=${`choices ${error ? 'field--error' : ''}`}
    aria-describedby=${error ? 'checkout-card-error' : 'checkout-card-hint'}>
    <legend>Payment</legend>
    <p class="field__hint" id="checkout-card-hint">Test payments: no money moves.</p>
    ${error && html`<p class="field__error" id="checkout-card-error">${DECLINES[error] || error}</p>`}
    ${CARDS.map(([token, label], i) => html`<div class="choice" key=${token}>
      <input type="radio" name="payment" id=${`checkout-card-${i}`} value=${token} checked=${token === value}
        onChange=${() => onChange(token)} />
      <label for=${`checkout-card-${i}`}><span class="choice__title">${label}</span></label>
    </div>`)}
  </fieldset>`;
}

function Summary({ cart }) {
  return html`<aside class="summary" aria-labelledby="checkout-summary-title">
    <h2 id="checkout-summary-title">Your order</h2>
    <ul class="summary__lines">
      ${cart.items.map((line) => html`<li key=${line.id}>
        <span>${line.quantity} × ${line.name}</span><${Money} value=${line.total} /></li>`)}
    </ul>
    <${CartTotals} cart=${cart} />
    <p class="summary__note">The shop adds delivery and works out tax when you place the order;
      the confirmation shows the total charged.</p>
    <a class="button button--link" href="#/cart">Change your cart</a>
  </aside>`;
}

function problemTitle(problem) {
  if (problem.status === 402) return 'Your payment was declined';
  if (problem.status === 409) return 'Your order could not be placed';
  if (problem.status === 422) return 'Please check your details';
  if (problem.status === 0 || problem.status >= 500) return 'Your order has not been placed yet';
  return 'Your order could not be placed';
}

export function CheckoutPage() {
  const { cart, ready, refresh, forget } = useCart();
  const [form, setForm] = useState(remembered);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);

  useEffect(() => {
    const { token, ...kept } = form;
    sessionStorage.setItem(FORM, JSON.stringify(kept));
  }, [form]);

  if (!ready) return html`<${Loading} label="Loading your cart…" />`;
  if (!cart || cart.items.length === 0) {
    return html`<section class="empty">
      <${PageHeading}>There is nothing to check out<//>
      <p>Your cart is empty.</p>
      <p><a class="button button--primary" href="#/">Start shopping</a></p>
    </section>`;
  }

  const set = (field) => (value) => setForm((f) => ({ ...f, [field]: value }));
  const error = (field) => problem?.fieldMessage(field);
  const text = (field, label, more = {}) => {
    const path = ADDRESS.includes(field) ? `shipping_address.${field}` : field;
    return html`<${TextField} id=${FIELDS[path]} label=${label} value=${form[field]} onInput=${set(field)}
      error=${error(path)} ...${more} />`;
  };

  const submit = async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = {
      cart_id: cart.id,
      email: form.email.trim(),
      shipping_address: Object.fromEntries(ADDRESS.map((f) => [f, form[f].trim()])),
      shipping_method: form.shipping_method,
      payment: { token: form.token },
    };
    setBusy(true);
    setProblem(null);
    try {
      const { order } = await placeOrder(body);
      rememberOrder(order.number, order.access_key);
      sessionStorage.removeItem(FORM);
      forget();
      navigate(`/order/${encodeURIComponent(order.number)}`);
    } catch (failure) {
      if (!(failure instanceof ApiProblem)) throw failure;
      setProblem(failure);
      if (failure.status === 402 || failure.status === 409) refresh().catch(() => {});
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="checkout" aria-labelledby="checkout-title">
    <${PageHeading} id="checkout-title" title="Checkout">Checkout<//>
    <div class="checkout__layout">
      <form class="checkout__form" onSubmit=${submit} novalidate aria-describedby="checkout-required">
        ${problem && html`<${ErrorSummary} problem=${problem} fields=${FIELDS} title=${problemTitle(problem)}
          describe=${(e) => (e.field === 'payment.token' ? DECLINES[e.message] || e.message : e.message)} />`}
        ${problem?.status === 409 && html`<p><a href="#/cart">Review your cart</a></p>`}
        <p class="field__hint" id="checkout-required">All fields are needed unless marked optional.</p>
        <fieldset>
          <legend>Contact</legend>
          ${text('email', 'E-mail address', { type: 'email', autocomplete: 'email', spellcheck: 'false',
            hint: 'For the order confirmation.' })}
        </fieldset>
        <fieldset>
          <legend>Delivery address</legend>
          ${text('name', 'Full name', { autocomplete: 'shipping name' })}
          ${text('line1', 'Street and number', { autocomplete: 'shipping address-line1' })}
          ${text('line2', 'Apartment, floor, c/o', { autocomplete: 'shipping address-line2', optional: true })}
          <div class="field-row">
            ${text('postal_code', 'Postcode', { autocomplete: 'shipping postal-code', className: 'field--short' })}
            ${text('city', 'Town or city', { autocomplete: 'shipping address-level2' })}
          </div>
          <${SelectField} id=${FIELDS['shipping_address.country']} label="Country" value=${form.country}
            onChange=${set('country')} options=${COUNTRIES} error=${error('shipping_address.country')} />
          ${text('region', 'State or region code', { autocomplete: 'shipping address-level1', optional: true,
            hint: 'For the US and Canada, e.g. CA.', className: 'field--short' })}
          ${text('phone', 'Phone', { type: 'tel', autocomplete: 'shipping tel', optional: true,
            hint: 'Only if the courier needs to reach you.' })}
        </fieldset>
        <${ShippingMethods} country=${form.country} value=${form.shipping_method} onChange=${set('shipping_method')}
          error=${error('shipping_method')} />
        <${Payment} value=${form.token} onChange=${set('token')} error=${error('payment.token')} />
        <button class="button button--primary button--block button--large" type="submit" disabled=${busy}>
          ${busy ? 'Placing your order…' : 'Place order and pay'}</button>
      </form>
      <${Summary} cart=${cart} />
    </div>
  </section>`;
}
