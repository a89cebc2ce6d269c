// One product: pictures, variants with their prices and stock, adding to the cart.

import { html, useEffect, useState } from './vendor/htm-preact-standalone-3.1.1.module.js';
import { ApiProblem, apiUrl, get, seg } from './api.js';
import { useCart } from './cart-state.js';
import { Money } from './money.js';
import { href } from './router.js';
import { Alert, Loading, NotFound, PageHeading, ProblemMessage } from './ui.js';

function stockText(variant) {
  return variant.in_stock ? `In stock — ${variant.available} available` : 'Out of stock';
}

function Gallery({ images, title }) {
  const [shown, setShown] = useState(0);
  if (images.length === 0) return html`<div class="gallery"><div class="gallery__main card__placeholder"></div></div>`;
  const image = images[Math.min(shown, images.length - 1)];
  return html`<div class="gallery">
    <img class="gallery__main" src=${apiUrl(image.url)} alt=${image.alt || title} width="600" height="600" />
    ${images.length > 1 && html`<ul class="gallery__thumbs" aria-label="More pictures">
      ${images.map((img, i) => html`<li key=${img.url}>
        <button type="button" class="gallery__thumb" aria-pressed=${i === shown ? 'true' : 'false'}
          onClick=${() => setShown(i)}>
          <img src=${apiUrl(img.url)} alt=${`Picture ${i + 1}: ${img.alt || title}`} width="80" height="80" />
        </button></li>`)}
    </ul>`}
  </div>`;
}

function VariantChoice({ variants, sku, onChoose }) {
  if (variants.length === 1) return null;
  return html`<fieldset class="variants">
    <legend>Choose an option</legend>
    ${variants.map((v) => html`<div class="variant" key=${v.sku}>
      <input type="radio" name="variant" id=${`variant-${v.sku}`} value=${v.sku} checked=${v.sku === sku}
        disabled=${!v.in_stock} onChange=${() => onChoose(v.sku)} />
      <label for=${`variant-${v.sku}`}>
        <span class="variant__title">${v.title}</span>
        <${Money} value=${v.price} className="variant__price" />
        <span class=${v.in_stock ? 'stock stock--in' : 'stock stock--out'}>${v.in_stock ? '' : 'Out of stock'}</span>
      </label>
    </div>`)}
  </fieldset>`;
}

function AddToCart({ product, variant }) {
  const { add } = useCart();
  const [quantity, setQuantity] = useState('1');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setOutcome(null);
    try {
      // the shop checks the quantity and the stock; what it says is shown as it is
      const wanted = Number(quantity);
      await add(variant.sku, Number.isInteger(wanted) ? wanted : quantity);
      setOutcome({ added: `${wanted} × ${product.title}${variant.title ? ` (${variant.title})` : ''}` });
    } catch (problem) {
      if (!(problem instanceof ApiProblem)) throw problem;
      setOutcome({ problem });
    } finally {
      setBusy(false);
    }
  };

  const error = outcome?.problem?.fieldMessage('quantity');
  return html`<form class="buy" onSubmit=${submit} novalidate>
    <div class=${`field field--quantity ${error ? 'field--error' : ''}`}>
      <label for="quantity">Quantity</label>
      ${error && html`<p class="field__error" id="quantity-error">${error}</p>`}
      <input id="quantity" name="quantity" type="number" inputmode="numeric" min="1" value=${quantity}
        aria-invalid=${error ? 'true' : undefined} aria-describedby=${error ? 'quantity-error' : undefined}
        onInput=${(e) => setQuantity(e.currentTarget.value)} />
    </div>
    <button class="button button--primary" type="submit" disabled=${busy || !variant.in_stock}>
      ${busy ? 'Adding…' : 'Add to cart'}</button>
    <div class="buy__outcome" aria-live="polite">
      ${outcome?.added && html`<${Alert} kind="success" title="Added to your cart">
        <p>${outcome.added}</p><p><a class="button" href="#/cart">View cart and check out</a></p><//>`}
    </div>
    ${outcome?.problem && html`<${ProblemMessage} problem=${outcome.problem} shown=${['quantity']}
      title="It could not be added to your cart" />`}
  </form>`;
}

export function ProductPage({ slug }) {
  const [state, setState] = useState({ loading: true });
  const [sku, setSku] = useState(null);

  useEffect(() => {
    const controller = new AbortController();
    setState({ loading: true });
    get(`/api/v1/products/${seg(slug)}`, { signal: controller.signal })
      .then(({ data }) => {
        setState({ data });
        setSku((data.variants.find((v) => v.in_stock) || data.variants[0])?.sku || null);
      })
      .catch((problem) => {
        if (problem.name !== 'AbortError') setState({ problem });
      });
    return () => controller.abort();
  }, [slug]);

  const { data: product, problem } = state;
  if (problem?.status === 404) return html`<${NotFound} what="product" />`;
  if (problem) return html`<${Alert} title="The product could not be loaded">${problem.detail}<//>`;
  if (!product) return html`<${Loading} label="Loading the product…" />`;

  const variant = product.variants.find((v) => v.sku === sku) || product.variants[0];
  const attributes = Object.entries(product.attributes || {});
  return html`<article class="product">
    <nav class="breadcrumbs" aria-label="Breadcrumb"><ol>
      <li><a href="#/">Shop</a></li>
      ${product.breadcrumbs.map((c) => html`<li key=${c.slug}><a href=${href('/', { category: c.slug })}>${c.name}</a></li>`)}
      <li aria-current="page">${product.title}</li>
    </ol></nav>
    <div class="product__layout">
      <${Gallery} images=${product.images} title=${product.title} />
      <div class="product__info">
        <${PageHeading} title=${product.title}>${product.title}<//>
        ${variant && html`<p class="product__price"><${Money} value=${variant.price} /></p>
          <p class=${variant.in_stock ? 'stock stock--in' : 'stock stock--out'} id="stock">${stockText(variant)}</p>`}
        ${!product.in_stock && html`<p>This product is sold out for now.</p>`}
        <${VariantChoice} variants=${product.variants} sku=${variant?.sku} onChoose=${setSku} />
        ${variant && html`<${AddToCart} key=${variant.sku} product=${product} variant=${variant} />`}
        <section class="product__about" aria-labelledby="about-title">
          <h2 id="about-title">About this product</h2>
          <p>${product.description}</p>
          ${attributes.length > 0 && html`<dl class="attributes">
            ${attributes.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}
          </dl>`}
        </section>
      </div>
    </div>
  </article>`;
}
