// Browsing: the home page, categories, search, sorting and pages of product cards.

import { html, useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { apiUrl, get } from './api.js';
import { Money } from './money.js';
import { href, navigate } from './router.js';
import { Alert, Loading, PageHeading } from './ui.js';

const LIMIT = 24;
const SORTS = [['', 'Recommended'], ['newest', 'Newest'], ['price', 'Price: low to high'],
  ['-price', 'Price: high to low'], ['title', 'Name']];

function ProductCard({ product }) {
  return html`<li class="card">
    <a class="card__link" href=${href(`/product/${encodeURIComponent(product.slug)}`)}>
      <div class="card__media">
        ${product.image
          ? html`<img src=${apiUrl(product.image.url)} alt="" loading="lazy" width="300" height="300" />`
          : html`<div class="card__placeholder" aria-hidden="true"></div>`}
      </div>
      <h2 class="card__title">${product.title}</h2>
    </a>
    <p class="card__price"><span class="visually-hidden">From </span><${Money} value=${product.price} /></p>
    <p class=${product.in_stock ? 'stock stock--in' : 'stock stock--out'}>
      ${product.in_stock ? 'In stock' : 'Out of stock'}</p>
  </li>`;
}

function Pagination({ page, pages, params }) {
  if (pages <= 1) return null;
  const to = (p) => href('/', { ...Object.fromEntries(params), page: p > 1 ? p : '' });
  return html`<nav class="pagination" aria-label="Pages of products">
    ${page > 1 ? html`<a class="button button--quiet" href=${to(page - 1)} rel="prev">← Previous</a>`
      : html`<span></span>`}
    <span class="pagination__where" aria-current="page">Page ${page} of ${pages}</span>
    ${page < pages ? html`<a class="button button--quiet" href=${to(page + 1)} rel="next">Next →</a>`
      : html`<span></span>`}
  </nav>`;
}

function Hero({ categories }) {
  const first = categories.find((c) => c.parent_id === null);
  return html`<section class="hero" aria-labelledby="hero-title">
    <div class="hero__text">
      <p class="hero__kicker">New season</p>
      <p class="hero__title" id="hero-title">Things made to last, at honest prices</p>
      <p>Free standard delivery on larger orders. Easy returns.</p>
      ${first && html`<a class="button" href=${href('/', { category: first.slug })}>Shop ${first.name}</a>`}
    </div>
  </section>`;
}

function Filters({ params, categories, sort, onChange }) {
  const searching = params.get('q');
  const options = searching ? [['relevance', 'Best match'], ...SORTS.slice(1)] : SORTS;
  return html`<form class="filters" aria-label="Sort and filter" onSubmit=${(e) => e.preventDefault()}>
    <div class="field field--inline">
      <label for="sort">Sort by</label>
      <select id="sort" value=${sort} onChange=${(e) => onChange({ sort: e.currentTarget.value })}>
        ${options.map(([v, t]) => html`<option key=${v} value=${v}>${t}</option>`)}
      </select>
    </div>
    <div class="field field--inline">
      <label for="category-filter">Category</label>
      <select id="category-filter" value=${params.get('category') || ''}
        onChange=${(e) => onChange({ category: e.currentTarget.value })}>
        <option value="">All categories</option>
        ${categories.map((c) => html`<option key=${c.slug} value=${c.slug}>
          ${c.parent_id === null ? c.name : `\u00a0\u00a0${c.name}`}</option>`)}
      </select>
    </div>
    <div class="field field--check">
      <input type="checkbox" id="in-stock" checked=${params.get('in_stock') === 'true'}
        onChange=${(e) => onChange({ in_stock: e.currentTarget.checked ? 'true' : '' })} />
      <label for="in-stock">In stock only</label>
    </div>
  </form>`;
}

export function CataloguePage({ params, categories }) {
  const [state, setState] = useState({ loading: true });
  const query = params.toString();
  const page = Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1);

  useEffect(() => {
    const controller = new AbortController();
    const ask = new URLSearchParams(params);
    ask.set('limit', String(LIMIT));
    setState((s) => ({ ...s, loading: true, problem: null }));
    get(`/api/v1/products?${ask}`, { signal: controller.signal })
      .then(({ data }) => setState({ data }))
      .catch((problem) => {
        if (problem.name !== 'AbortError') setState({ problem });
      });
    return () => controller.abort();
  }, [query]);

  const change = (changes) => navigate('/', { ...Object.fromEntries(params), page: '', ...changes });
  const category = categories.find((c) => c.slug === params.get('category'));
  const q = params.get('q');
  const title = q ? `Results for “${q}”` : category ? category.name : 'All products';
  const home = !q && !params.get('category') && page === 1;
  const { data, problem, loading } = state;

  return html`
    ${home && html`<${Hero} categories=${categories} />`}
    <section class="catalogue" aria-labelledby="page-title" aria-busy=${loading ? 'true' : 'false'}>
      <div class="catalogue__head">
        <${PageHeading} id="page-title" title=${title}>${title}<//>
        ${data && html`<p class="catalogue__count" role="status">
          ${data.total === 1 ? '1 product' : `${data.total} products`}</p>`}
      </div>
      ${category?.description && html`<p class="lead">${category.description}</p>`}
      <${Filters} params=${params} categories=${categories} sort=${params.get('sort') || ''} onChange=${change} />
      ${problem && html`<${Alert} title="The products could not be loaded">${problem.detail}<//>`}
      ${loading && !data && html`<${Loading} label="Loading products…" />`}
      ${data && data.items.length === 0 && html`<div class="empty">
        <p>No products match. Try other words or fewer filters.</p>
        <p><a class="button button--quiet" href="#/">See all products</a></p></div>`}
      ${data && data.items.length > 0 && html`<ul class="grid" aria-label="Products">
        ${data.items.map((p) => html`<${ProductCard} key=${p.slug} product=${p} />`)}
      </ul>`}
      ${data && html`<${Pagination} page=${data.page} pages=${Math.ceil(data.total / data.limit)} params=${params} />`}
    </section>`;
}
