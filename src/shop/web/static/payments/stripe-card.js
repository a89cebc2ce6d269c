// Stripe's card element for the shop's pages (Stripe.js is loaded before this from js.stripe.com). The checkout
// form gets a confirmation token (ctoken_…) in place of the card, and the shop makes and confirms the PaymentIntent
// for the order's total on the server; an order page whose payment needs 3-D Secure runs the bank's challenge.
(() => {
  'use strict';

  const fieldset = document.querySelector('[data-card-element="stripe"]');
  const next = document.querySelector('[data-stripe-next-action]');
  const say = (where, text) => {
    let line = where.querySelector('.stripe-error');
    if (!line) {
      line = document.createElement('p');
      line.className = 'error stripe-error';
      line.setAttribute('role', 'alert');
      where.append(line);
    }
    line.textContent = text;
  };
  if (typeof window.Stripe !== 'function') {
    [fieldset, next].filter(Boolean).forEach((where) => say(where, 'The secure card form could not load. '
      + 'Check your connection (or a blocker) and reload the page.'));
    return;
  }

  if (fieldset) {
    const stripe = window.Stripe(fieldset.dataset.publishableKey);
    const elements = stripe.elements({
      mode: 'payment', amount: Number(fieldset.dataset.amount), currency: fieldset.dataset.currency,
    });
    const container = fieldset.querySelector('.card-element');
    container.textContent = '';
    elements.create('payment').mount(container);
    const checkout = fieldset.closest('form');
    const token = fieldset.querySelector('input[name="token"]');
    let busy = false;
    checkout.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (busy) return;
      busy = true;
      try {
        const checked = await elements.submit();
        if (checked.error) { say(fieldset, checked.error.message); return; }
        const { error, confirmationToken } = await stripe.createConfirmationToken({ elements });
        if (error) { say(fieldset, error.message); return; }
        token.value = confirmationToken.id;
        checkout.submit(); // the plain submit: no second pass through this handler
      } finally {
        busy = false;
      }
    });
  }

  if (next) {
    const stripe = window.Stripe(next.dataset.publishableKey);
    const button = next.querySelector('button');
    const challenge = async () => {
      button.disabled = true;
      const { error } = await stripe.handleNextAction({ clientSecret: next.dataset.clientSecret });
      if (error) {
        say(next, error.message);
        button.disabled = false;
        return;
      }
      window.location.reload(); // the order page asks Stripe how the payment stands
    };
    button.addEventListener('click', challenge);
    challenge();
  }
})();
