// Checkout: contact, address, delivery and payment; the shop prices, reserves and charges, this page shows.

import { html, useEffect, useRef, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem, get, post, seg } from './api.js';
import {
  TEST_CARDS, TEST_CARD_FORM, cardForm, confirmWithStripe, mountStripeCard,
} from './card-element.js';
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

/** Stripe's Payment Element; `element.current` gets its `tokenize()` once it is there. */
function StripeCard({ publishableKey, estimate, element }) {
  const container = useRef(null);
  const [failure, setFailure] = useState(null);
  useEffect(() => {
    let mounted = null;
    let current = true;
    mountStripeCard(container.current, publishableKey, estimate)
      .then((made) => {
        if (current) {
          mounted = made;
          element.current = made;
        } else made.destroy();
      })
      .catch((error) => current && setFailure(error.message));
    return () => {
      current = false;
      element.current = null;
      mounted?.destroy();
    };
  }, [publishableKey]);
  return html`<div>
    ${failure && html`<p class="field__error" role="alert">${failure}</p>`}
    <div class="card-element" ref=${container}></div>
  </div>`;
}

/** The configured gateway's card element: the test cards (in a form of their own) or Stripe's. */
function Payment({ gateway, value, onChange, error, estimate, element }) {
  const stripe = gateway?.gateway === 'stripe';
  return html`<fieldset class=${`choices ${error ? 'field--error' : ''}`}
    aria-describedby=${error ? 'checkout-card-error' : 'checkout-card-hint'}>
    <legend>Payment</legend>
    <p class="field__hint" id="checkout-card-hint">${stripe
      ? 'Your card details go straight to Stripe, our payment provider; this shop never sees them.'
      : 'Test payments: no money moves.'}</p>
    ${error && html`<p class="field__error" id="checkout-card-error">${DECLINES[error] || error}</p>`}
    ${!gateway && html`<${Loading} label="Loading the payment form…" />`}
    ${stripe && html`<${StripeCard} publishableKey=${gateway.publishable_key} estimate=${estimate}
      element=${element} />`}
    ${gateway && !stripe && TEST_CARDS.map(([token, label], i) => html`<div class="choice" key=${token}>
      <input type="radio" name="test-card" form=${TEST_CARD_FORM} id=${`checkout-card-${i}`} value=${token}
        checked=${token === value} onChange=${() => onChange(token)} />
      <label for=${`checkout-card-${i}`}><span class="choice__title">${label}</span></label>
    </div>`)}
  </fieldset>`;
}

/** After a 202: what the buyer must still do. Stripe's challenge runs here; the test bank's page is linked from
 * the order page. Then the shop is asked again, which settles the payment if the webhook has not yet. */
async function finishPayment(number, key, gateway) {
  const headers = { 'X-Order-Key': key };
  const path = `/api/v1/orders/${seg(number)}/next-action`;
  const { data } = await post(path, {}, { headers });
  if (data.next_action?.type === 'use_stripe_sdk') {
    await confirmWithStripe(gateway.publishable_key, data.next_action.client_secret);
    await post(path, {}, { headers });
  }
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
  const [gateway, setGateway] = useState(null);
  const element = useRef(null);

  useEffect(() => {
    cardForm().then(setGateway).catch((failure) => failure instanceof ApiProblem && setProblem(failure));
  }, []);

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
    if (busy || !gateway) return;
    setBusy(true);
    setProblem(null);
    let token = form.token;
    if (gateway.gateway === 'stripe') {
      try {
        if (!element.current) throw new Error('The card form is still loading.');
        token = await element.current.tokenize();
      } catch (failure) {
        setProblem(new ApiProblem(422, { title: 'Please check your card', detail: failure.message,
          errors: [{ field: 'payment.token', message: failure.message }] }));
        setBusy(false);
        return;
      }
    }
    const body = {
      cart_id: cart.id,
      email: form.email.trim(),
      shipping_address: Object.fromEntries(ADDRESS.map((f) => [f, form[f].trim()])),
      shipping_method: form.shipping_method,
      payment: { token },
    };
    try {
      const { status, order } = await placeOrder(body);
      rememberOrder(order.number, order.access_key);
      if (status === 202) {
        // the order is placed either way; a challenge that fails shows on the order page
        await finishPayment(order.number, order.access_key, gateway).catch(() => {});
      }
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
        <${Payment} gateway=${gateway} value=${form.token} onChange=${set('token')} error=${error('payment.token')}
          estimate=${cart.subtotal} element=${element} />
        <button class="button button--primary button--block button--large" type="submit" disabled=${busy}>
          ${busy ? 'Placing your order…' : 'Place order and pay'}</button>
      </form>
      <${Summary} cart=${cart} />
    </div>
    <form id=${TEST_CARD_FORM} hidden onSubmit=${(e) => e.preventDefault()}></form>
  </section>`;
}
