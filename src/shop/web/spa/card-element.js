// The configured gateway's card element (GET /api/v1/payments/card-form): the test gateway's cards, chosen in a
// form of their own, or Stripe's Payment Element (Stripe.js from js.stripe.com). Either gives the checkout a
// token, never a card; the shop charges the token for the total it works out itself.

import { get } from './api.js';

const STRIPE_JS = 'https://js.stripe.com/v3/';
export const TEST_CARD_FORM = 'test-card-form';
// the test gateway's cards; no card number is ever typed here or sent anywhere
export const TEST_CARDS = [['tok_visa', 'Visa test card'], ['tok_mastercard', 'Mastercard test card'],
  ['tok_threeDSecure', 'Test card that asks the bank to confirm (3-D Secure)'],
  ['tok_chargeDeclined', 'Test card that is declined']];

let form = null;
let stripeJs = null;

/** Which card element this shop uses: {gateway: 'test' | 'stripe', publishable_key}. */
export function cardForm() {
  form ||= get('/api/v1/payments/card-form').then(({ data }) => data).catch((problem) => {
    form = null;
    throw problem;
  });
  return form;
}

function loadStripe() {
  stripeJs ||= new Promise((resolve, reject) => {
    if (typeof window.Stripe === 'function') {
      resolve(window.Stripe);
      return;
    }
    const script = document.createElement('script');
    script.src = STRIPE_JS;
    script.onload = () => resolve(window.Stripe);
    script.onerror = () => {
      stripeJs = null;
      reject(new Error('The secure card form could not load. Check your connection and try again.'));
    };
    document.head.append(script);
  });
  return stripeJs;
}

/** Whole minor units of a money value ({amount: "12.34", currency: "EUR"}), as Stripe.js takes them. */
function minorUnits({ amount, currency }) {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits;
  return Math.round(Number(amount) * 10 ** digits);
}

/** Stripe's Payment Element in `container`; `estimate` only shapes what it offers, the shop sets the amount. */
export async function mountStripeCard(container, publishableKey, estimate) {
  const stripe = (await loadStripe())(publishableKey);
  const elements = stripe.elements({
    mode: 'payment', amount: minorUnits(estimate), currency: estimate.currency.toLowerCase(),
  });
  const element = elements.create('payment');
  element.mount(container);
  return {
    async tokenize() {
      const checked = await elements.submit();
      if (checked.error) throw new Error(checked.error.message);
      const { error, confirmationToken } = await stripe.createConfirmationToken({ elements });
      if (error) throw new Error(error.message);
      return confirmationToken.id;
    },
    destroy: () => element.destroy(),
  };
}

/** Run the bank's challenge (3-D Secure) Stripe asked for; resolves when the customer is done with it. */
export async function confirmWithStripe(publishableKey, clientSecret) {
  const stripe = (await loadStripe())(publishableKey);
  const { error } = await stripe.handleNextAction({ clientSecret });
  if (error) throw new Error(error.message);
}
