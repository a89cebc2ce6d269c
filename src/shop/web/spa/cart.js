// The cart: lines at today's prices, quantities, a discount code, and the way to checkout.

import { html, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem } from './api.js';
import { useCart } from './cart-state.js';
import { Money } from './money.js';
import { href } from './router.js';
import { Alert, Loading, PageHeading, ProblemMessage } from './ui.js';

/** Run a cart change, keeping the API's problem (if any) for the form that asked. */
function useChange() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);
  const run = async (work) => {
    setBusy(true);
    setProblem(null);
    try {
      await work();
      return true;
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error;
      setProblem(error);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, problem, run };
}

function CartLine({ line }) {
  const { change, remove } = useCart();
  const [quantity, setQuantity] = useState(String(line.quantity));
  const { busy, problem, run } = useChange();
  const id = `qty-${line.id}`;
  const error = problem?.fieldMessage('quantity');

  const update = (event) => {
    event.preventDefault();
    const wanted = Number(quantity);
    run(() => change(line.id, Number.isInteger(wanted) ? wanted : quantity));
  };

  return html`<li class="line">
    <div class="line__what">
      <a class="line__name" href=${href(`/product/${encodeURIComponent(line.product_slug)}`)}>${line.name}</a>
      <p class="line__sku">SKU ${line.sku}</p>
      <p class="line__unit">Each <${Money} value=${line.unit_price} /></p>
      ${line.available < line.quantity && html`<p class="stock stock--out">
        ${line.available === 0 ? 'Sold out' : `Only ${line.available} available`}</p>`}
    </div>
    <form class="line__quantity" onSubmit=${update} novalidate>
      <label for=${id}>Quantity<span class="visually-hidden"> of ${line.name}</span></label>
      <input id=${id} type="number" inputmode="numeric" min="1" value=${quantity}
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? `${id}-error` : undefined}
        onInput=${(e) => setQuantity(e.currentTarget.value)} />
      <button class="button button--quiet" type="submit" disabled=${busy}>Update</button>
      ${error && html`<p class="field__error" id=${`${id}-error`}>${error}</p>`}
    </form>
    <p class="line__total"><span class="visually-hidden">Line total </span><${Money} value=${line.total} /></p>
    <button class="button button--link line__remove" type="button" disabled=${busy}
      onClick=${() => run(() => remove(line.id))}>Remove<span class="visually-hidden"> ${line.name}</span></button>
    ${problem && !error && html`<div class="line__problem"><${ProblemMessage} problem=${problem} /></div>`}
  </li>`;
}

function DiscountForm({ cart }) {
  const { discount } = useCart();
  const [code, setCode] = useState('');
  const { busy, problem, run } = useChange();
  const error = problem?.fieldMessage('code');

  const apply = async (event) => {
    event.preventDefault();
    if (await run(() => discount(code))) setCode('');
  };

  if (cart.discount_code) {
    return html`<div class="discount">
      <p>Discount code <strong>${cart.discount_code}</strong></p>
      ${cart.discount_problem && html`<p class="field__error">${cart.discount_problem}</p>`}
      <button class="button button--link" type="button" disabled=${busy} onClick=${() => run(() => discount(null))}>
        Remove code</button>
    </div>`;
  }
  return html`<form class="discount" onSubmit=${apply} novalidate>
    <label for="discount-code">Discount code</label>
    ${error && html`<p class="field__error" id="discount-code-error">${error}</p>`}
    <div class="discount__row">
      <input id="discount-code" name="code" value=${code} autocomplete="off"
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? 'discount-code-error' : undefined}
        onInput=${(e) => setCode(e.currentTarget.value)} />
      <button class="button button--quiet" type="submit" disabled=${busy}>Apply</button>
    </div>
    ${problem && !error && html`<${ProblemMessage} problem=${problem} />`}
  </form>`;
}

/** The cart's money as the API worked it out. */
export function CartTotals({ cart }) {
  return html`<dl class="totals">
    <div><dt>Items (${cart.item_count})</dt><dd><${Money} value=${cart.goods} /></dd></div>
    ${cart.discount_code && html`<div><dt>Discount (${cart.discount_code})</dt>
      <dd><${Money} value=${cart.discount} minus=${true} /></dd></div>`}
    <div class="totals__total"><dt>Subtotal</dt><dd><${Money} value=${cart.subtotal} className="cart-subtotal" /></dd></div>
  </dl>`;
}

export function CartPage() {
  const { cart, ready } = useCart();
  if (!ready) return html`<${Loading} label="Loading your cart…" />`;
  if (!cart || cart.items.length === 0) {
    return html`<section class="empty">
      <${PageHeading}>Your cart is empty<//>
      <p>Find something you like and add it to your cart.</p>
      <p><a class="button button--primary" href="#/">Start shopping</a></p>
    </section>`;
  }
  return html`<section class="cart" aria-labelledby="cart-title">
    <${PageHeading} id="cart-title" title="Your cart">Your cart<//>
    ${cart.unavailable_items.length > 0 && html`<${Alert} title="Some items are no longer available">
      <p>These are not counted and will not be ordered: ${cart.unavailable_items.map((i) => i.sku).join(', ')}.</p><//>`}
    <div class="cart__layout">
      <ul class="lines" aria-label="Items in your cart">
        ${cart.items.map((line) => html`<${CartLine} key=${`${line.id}:${line.quantity}`} line=${line} />`)}
      </ul>
      <aside class="summary" aria-labelledby="summary-title">
        <h2 id="summary-title">Order summary</h2>
        <${CartTotals} cart=${cart} />
        <p class="summary__note">Delivery and tax are worked out at checkout.</p>
        <${DiscountForm} cart=${cart} />
        <a class="button button--primary button--block" href="#/checkout">Go to checkout</a>
        <a class="button button--link" href="#/">Continue shopping</a>
      </aside>
    </div>
  </section>`;
}
