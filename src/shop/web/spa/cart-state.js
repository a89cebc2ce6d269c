// The visitor's cart, shared by every page: the API's view of it, and the changes the API is asked for.

import {
  createContext, useCallback, useContext, useEffect, useState,
} from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem, del, get, patch, post, seg } from './api.js';
import { CART_KEY, cartId, setCartId } from './storage.js';

export const CartContext = createContext(null);

export const useCart = () => useContext(CartContext);

/** The cart as the API last described it (null: none yet), and the ways to change it. */
export function useCartState() {
  const [cart, setCart] = useState(null);
  const [ready, setReady] = useState(false);

  const keep = useCallback((data) => {
    if (data && data.status === 'open') {
      setCartId(data.id);
      setCart(data);
    } else {
      // ordered or merged: the next purchase starts a new cart
      setCartId(null);
      setCart(null);
    }
    return data;
  }, []);

  const forget = useCallback(() => keep(null), [keep]);

  const refresh = useCallback(async () => {
    const id = cartId();
    if (!id) {
      setCart(null);
      setReady(true);
      return null;
    }
    try {
      return keep((await get(`/api/v1/carts/${seg(id)}`)).data);
    } catch (problem) {
      if (problem instanceof ApiProblem && problem.status === 404) return forget();
      throw problem;
    } finally {
      setReady(true);
    }
  }, [keep, forget]);

  const add = useCallback(async (sku, quantity) => {
    const attempt = async () => {
      let id = cartId();
      if (!id) id = keep((await post('/api/v1/carts')).data).id;
      return keep((await post(`/api/v1/carts/${seg(id)}/items`, { sku, quantity })).data);
    };
    try {
      return await attempt();
    } catch (problem) {
      // the remembered cart is gone or already ordered: start a new one, once
      if (problem instanceof ApiProblem && [404, 409].includes(problem.status) && cartId()
        && !(await refresh())) {
        return attempt();
      }
      throw problem;
    }
  }, [keep, refresh]);

  const line = (lineId) => `/api/v1/carts/${seg(cartId())}/items/${seg(lineId)}`;
  const change = useCallback(async (lineId, quantity) => keep((await patch(line(lineId), { quantity })).data), [keep]);
  const remove = useCallback(async (lineId) => keep((await del(line(lineId))).data), [keep]);
  const discount = useCallback(
    async (code) => keep((await post(`/api/v1/carts/${seg(cartId())}/discount`, { code })).data),
    [keep],
  );

  useEffect(() => {
    refresh().catch(() => setReady(true));
    // another tab bought or changed the cart
    const other = (event) => {
      if (event.key === CART_KEY) refresh().catch(() => {});
    };
    window.addEventListener('storage', other);
    return () => window.removeEventListener('storage', other);
  }, [refresh]);

  return { cart, ready, refresh, add, change, remove, discount, forget };
}
