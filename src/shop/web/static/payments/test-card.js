// The test gateway's card element. Like Stripe's Payment Element it keeps the card out of the checkout form: the
// test cards move into a form of their own, and the checkout form carries only the token the chosen card stands
// for (tok_visa, tok_threeDSecure, …). Without JavaScript the page keeps its plain list of test cards instead.
(() => {
  'use strict';

  const fieldset = document.querySelector('[data-card-element="test"]');
  if (!fieldset) return;
  const checkout = fieldset.closest('form');

  const own = document.createElement('form');
  own.id = 'test-card-form';
  own.hidden = true;
  own.addEventListener('submit', (event) => event.preventDefault());
  document.body.append(own);

  const token = document.createElement('input');
  token.type = 'hidden';
  token.name = 'token';
  fieldset.append(token);
  const cards = [...fieldset.querySelectorAll('input[name="token"][type="radio"]')];
  cards.forEach((card) => {
    card.dataset.token = card.value;
    card.name = 'test-card';
    card.setAttribute('form', own.id); // no longer the checkout form's
  });
  fieldset.dataset.cardElementReady = 'true';

  checkout.addEventListener('submit', (event) => {
    const chosen = cards.find((card) => card.checked);
    if (!chosen) {
      event.preventDefault();
      cards[0]?.focus();
      return;
    }
    token.value = chosen.dataset.token;
  });
})();
