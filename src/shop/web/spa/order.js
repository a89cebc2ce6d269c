// An order after checkout: the confirmation, or the bank's confirmation still to give (3-D Secure).

import { html, useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem, get, post, seg } from './api.js';
import { cardForm, confirmWithStripe } from './card-element.js';
import { Money } from './money.js';
import { orderKey } from './storage.js';
import { Alert, Loading, NotFound, PageHeading } from './ui.js';

const POLL_MS = 2000;
const STATUS = {
  pending: 'Waiting for payment', paid: 'Paid', fulfilled: 'Packed', partly_shipped: 'Partly shipped',
  shipped: 'Shipped', delivered: 'Delivered',
  canceled: 'Canceled', refunded: 'Refunded',
};

/** The order as the API shows it to this browser (X-Order-Key), read again while its payment is pending. */
function useOrder(number) {
  const [state, setState] = useState({ loading: true });
  const key = orderKey(number);

  useEffect(() => {
    if (!key) return undefined;
    let timer = null;
    let stopped = false;
    const load = async () => {
      clearTimeout(timer);
      try {
        const { data } = await get(`/api/v1/orders/${seg(number)}`, { headers: { 'X-Order-Key': key } });
        if (stopped) return;
        setState({ data });
        if (data.status === 'pending') timer = setTimeout(load, POLL_MS);
      } catch (problem) {
        if (stopped || !(problem instanceof ApiProblem)) return;
        setState((s) => ({ ...s, problem }));
        if (problem.status === 0 || problem.status >= 500) timer = setTimeout(load, POLL_MS * 2);
      }
    };
    // back from the bank's page: look at once rather than at the next tick
    const back = () => {
      if (document.visibilityState === 'visible' && !stopped) load();
    };
    load();
    document.addEventListener('visibilitychange', back);
    window.addEventListener('focus', back);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', back);
      window.removeEventListener('focus', back);
    };
  }, [number, key]);

  return key ? state : { problem: new ApiProblem(404, { detail: 'no key for this order here' }) };
}

function Totals({ totals, discountCode }) {
  const taxLabel = totals.prices_include_tax ? 'Including tax' : 'Tax';
  return html`<dl class="totals">
    <div><dt>Items</dt><dd><${Money} value=${totals.goods} /></dd></div>
    ${discountCode && html`<div><dt>Discount (${discountCode})</dt>
      <dd><${Money} value=${totals.discount} minus=${true} /></dd></div>`}
    <div><dt>Delivery</dt><dd><${Money} value=${totals.shipping} /></dd></div>
    <div class=${totals.prices_include_tax ? 'totals__included' : ''}><dt>${taxLabel}</dt>
      <dd><${Money} value=${totals.tax} /></dd></div>
    <div class="totals__total"><dt>Total</dt><dd><${Money} value=${totals.total} className="order-total" /></dd></div>
  </dl>`;
}

function PaymentAction({ order }) {
  return html`<div class="alert alert--action" role="status">
    <p class="alert__title">Confirm the payment with your bank</p>
    <p>Your bank asks you to confirm this payment. It opens in a new tab; this page updates by itself once the
      bank has confirmed. Your items are held for you until then.</p>
    <p><a class="button button--primary" href=${order.payment.action_url} target="_blank" rel="noopener">
      Confirm payment with your bank</a></p>
  </div>`;
}

/** Stripe's challenge, for a buyer who left before finishing it: the shop hands its client secret to them only. */
function StripeAction({ order }) {
  const [failure, setFailure] = useState(null);
  const confirm = async () => {
    setFailure(null);
    const headers = { 'X-Order-Key': orderKey(order.number) };
    const path = `/api/v1/orders/${seg(order.number)}/next-action`;
    try {
      const { data } = await post(path, {}, { headers });
      if (data.next_action?.type === 'use_stripe_sdk') {
        await confirmWithStripe((await cardForm()).publishable_key, data.next_action.client_secret);
        await post(path, {}, { headers });
      }
    } catch (error) {
      setFailure(error.message);
    }
  };
  return html`<div class="alert alert--action" role="status">
    <p class="alert__title">Confirm the payment with your bank</p>
    ${failure && html`<p class="field__error">${failure}</p>`}
    <p><button class="button button--primary" type="button" onClick=${confirm}>Confirm payment with your bank</button></p>
  </div>`;
}

function Heading({ order }) {
  if (order.status === 'pending') return html`<${PageHeading} id="order-title" title="Confirm your payment">Almost done<//>`;
  if (order.status === 'canceled') return html`<${PageHeading} id="order-title" title="Order canceled">This order was canceled<//>`;
  return html`<${PageHeading} id="order-title" title="Thank you">Thank you for your order<//>`;
}

export function OrderPage({ number }) {
  const { data: order, problem } = useOrder(number);
  if (!order && problem?.status === 404) {
    return html`<${NotFound} what="order"><p>An order placed as a guest can only be seen in the browser it was
      placed in, and through the link in its confirmation e-mail.</p><//>`;
  }
  if (!order && problem) return html`<${Alert} title="The order could not be loaded">${problem.detail}<//>`;
  if (!order) return html`<${Loading} label="Loading your order…" />`;

  const address = order.shipping_address;
  return html`<section class="order" aria-labelledby="order-title">
    <div class="order__head">
      <${Heading} order=${order} />
      <p class="order__number">Order number <strong class="order-number">${order.number}</strong></p>
      <p>Status: <strong class="order-status" data-status=${order.status}>${STATUS[order.status] || order.status}</strong></p>
    </div>
    ${order.status === 'pending' && order.payment.action_url && html`<${PaymentAction} order=${order} />`}
    ${order.status === 'pending' && !order.payment.action_url && order.payment.status === 'requires_action'
      && html`<${StripeAction} order=${order} />`}
    ${order.status !== 'pending' && order.status !== 'canceled'
      && html`<p>We have sent a confirmation to <strong>${order.email}</strong>.</p>`}
    ${problem && html`<${Alert} kind="warning" title="The latest status could not be loaded">${problem.detail}<//>`}
    <div class="order__layout">
      <section aria-labelledby="order-items">
        <h2 id="order-items">Items</h2>
        <ul class="summary__lines">
          ${order.items.map((line) => html`<li key=${line.sku}>
            <span>${line.quantity} × ${line.name}</span><${Money} value=${line.total} /></li>`)}
        </ul>
        <${Totals} totals=${order.totals} discountCode=${order.discount_code} />
      </section>
      <section aria-labelledby="order-delivery">
        <h2 id="order-delivery">Delivery</h2>
        <address>
          ${address.name}<br />${address.line1}<br />
          ${address.line2 && html`${address.line2}<br />`}
          ${address.postal_code} ${address.city}${address.region ? ` ${address.region}` : ''}<br />${address.country}
        </address>
        <p>${order.shipping_method.name}</p>
        ${order.tracking && html`<p>Tracking number: ${order.tracking}</p>`}
      </section>
    </div>
    <p><a class="button" href="#/">Continue shopping</a></p>
  </section>`;
}
