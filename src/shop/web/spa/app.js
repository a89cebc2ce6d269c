// The backup storefront: the page frame (header, navigation, footer) and which page a route shows.

import { html, render, useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { apiRoot, get } from './api.js';
import { CartPage } from './cart.js';
import { CartContext, useCart, useCartState } from './cart-state.js';
import { CataloguePage } from './catalogue.js';
import { CheckoutPage } from './checkout.js';
import { OrderPage } from './order.js';
import { ProductPage } from './product.js';
import { href, navigate, useRoute } from './router.js';
import { NotFound } from './ui.js';

function focusMain(event) {
  event.preventDefault(); // "#main" would be read as a route
  document.getElementById('main')?.focus();
}

function Search({ params }) {
  const [q, setQ] = useState(params.get('q') || '');
  useEffect(() => setQ(params.get('q') || ''), [params.get('q')]);
  const submit = (event) => {
    event.preventDefault();
    navigate('/', { q: q.trim() });
  };
  return html`<form class="search" role="search" onSubmit=${submit}>
    <label for="search" class="visually-hidden">Search products</label>
    <input id="search" type="search" name="q" placeholder="Search products" value=${q} autocomplete="off"
      onInput=${(e) => setQ(e.currentTarget.value)} />
    <button class="button button--primary" type="submit">Search</button>
  </form>`;
}

function CartLink() {
  const { cart } = useCart();
  const count = cart?.item_count || 0;
  return html`<a class="cart-link" href="#/cart" aria-label=${`Cart, ${count === 1 ? '1 item' : `${count} items`}`}>
    <svg aria-hidden="true" viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor"
      d="M7 18a2 2 0 1 0 0 4 2 2 0 0 0 0-4Zm10 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4ZM5.2 4l.6 3H21l-2 8H7.2L4.4 2H1v2h3.6Z"/></svg>
    <span>Cart</span><span class="cart-link__count" data-count=${count}>${count}</span>
  </a>`;
}

function Header({ route, categories }) {
  const top = categories.filter((c) => c.parent_id === null);
  const current = route.params.get('category');
  return html`<header class="site-header">
    <div class="site-header__bar">
      <a class="brand" href="#/"><span class="brand__mark" aria-hidden="true">◆</span> shop</a>
      <${Search} params=${route.params} />
      <${CartLink} />
    </div>
    ${top.length > 0 && html`<nav class="categories" aria-label="Categories"><ul>
      ${top.map((c) => html`<li key=${c.slug}><a href=${href('/', { category: c.slug })}
        aria-current=${c.slug === current ? 'page' : undefined}>${c.name}</a></li>`)}
    </ul></nav>`}
  </header>`;
}

function Footer() {
  return html`<footer class="site-footer">
    <div class="site-footer__inner">
      <p><strong>shop</strong> — free standard delivery on larger orders, 30-day returns.</p>
      <nav aria-label="Footer"><ul>
        <li><a href="#/">All products</a></li><li><a href="#/cart">Cart</a></li>
      </ul></nav>
      <p class="site-footer__note">Backup storefront. Prices, stock and orders come from
        <span class="nowrap"> ${apiRoot.host}</span>.</p>
    </div>
  </footer>`;
}

function Page({ route, categories }) {
  const [first, second] = route.segments;
  if (!first) return html`<${CataloguePage} params=${route.params} categories=${categories} />`;
  if (first === 'product' && second) return html`<${ProductPage} key=${second} slug=${second} />`;
  if (first === 'cart' && !second) return html`<${CartPage} />`;
  if (first === 'checkout' && !second) return html`<${CheckoutPage} />`;
  if (first === 'order' && second) return html`<${OrderPage} key=${second} number=${second} />`;
  return html`<${NotFound} />`;
}

function App() {
  const route = useRoute();
  const cart = useCartState();
  const [categories, setCategories] = useState([]);
  useEffect(() => {
    get('/api/v1/categories').then(({ data }) => setCategories(data.items)).catch(() => setCategories([]));
  }, []);

  return html`<${CartContext.Provider} value=${cart}>
    <a class="skip-link" href="#main" onClick=${focusMain}>Skip to content</a>
    <${Header} route=${route} categories=${categories} />
    <main id="main" class="site-main" tabindex="-1">
      <${Page} route=${route} categories=${categories} />
    </main>
    <${Footer} />
  <//>`;
}

const root = document.getElementById('root');
root.textContent = '';
render(html`<${App} />`, root);
