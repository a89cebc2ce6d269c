// What this browser remembers: its cart, the keys to its guest orders, an unanswered checkout.

const CART = 'shop.cart';
const ORDERS = 'shop.orders';
const ATTEMPT = 'shop.checkout-attempt';
const KEPT_ORDERS = 20;

function read(store, key, fallback) {
  try {
    const raw = store.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(store, key, value) {
  try {
    if (value === null) store.removeItem(key);
    else store.setItem(key, JSON.stringify(value));
  } catch {
    // private mode or a full quota: the shop still works for this visit
  }
}

export const cartId = () => read(localStorage, CART, null);
export const setCartId = (id) => write(localStorage, CART, id);
export const CART_KEY = CART;

/** The access key a guest needs to read an order back (X-Order-Key), kept for the latest few orders. */
export function orderKey(number) {
  return read(localStorage, ORDERS, []).find((o) => o.number === number)?.key || null;
}

export function rememberOrder(number, key) {
  const kept = read(localStorage, ORDERS, []).filter((o) => o.number !== number);
  write(localStorage, ORDERS, [{ number, key }, ...kept].slice(0, KEPT_ORDERS));
}

/**
 * The Idempotency-Key for submitting `body` at checkout: the same key while the same submission is retried
 * (the network failed, the shop was busy), a new one once the shop gave a final answer or the body changed.
 */
export function checkoutKey(body) {
  const text = JSON.stringify(body);
  const attempt = read(sessionStorage, ATTEMPT, null);
  if (attempt && attempt.body === text) return attempt.key;
  const key = crypto.randomUUID();
  write(sessionStorage, ATTEMPT, { key, body: text });
  return key;
}

export const forgetCheckoutKey = () => write(sessionStorage, ATTEMPT, null);
