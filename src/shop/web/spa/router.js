// Hash routes (#/product/slug, #/cart, #/checkout, #/order/NUMBER), so any static host can serve the shop.

import { useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';

/** Whether the reader has moved from the page the shop opened on. */
export const navigation = { moved: false };

export function parse(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  const segments = path.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return { path, params, segments, key: raw };
}

/** "#/path?a=1" from a path and the non-empty parameters. */
export function href(path, params = {}) {
  const query = new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined && v !== false),
  ).toString();
  return `#${path}${query ? `?${query}` : ''}`;
}

export function navigate(path, params) {
  const target = href(path, params);
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = target;
}

export function useRoute() {
  const [route, setRoute] = useState(() => parse());
  useEffect(() => {
    const changed = () => {
      navigation.moved = true;
      setRoute(parse());
      window.scrollTo(0, 0);
    };
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}
