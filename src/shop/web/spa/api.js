// Talking to the shop's JSON API: where it is, requests, and its problem+json errors.

const configured = document.querySelector('meta[name="shop-api-url"]')?.content.trim() || '';

// The API root, ending in "/": the page's own origin unless index.html names another.
export const apiRoot = new URL(configured ? configured.replace(/\/*$/, '/') : '/', location.href);

/** An absolute URL for a path the API gave or documents ("/api/v1/…", "/media/…"). */
export function apiUrl(path) {
  return new URL(path.startsWith('/') && configured ? '.' + path : path, apiRoot).href;
}

/** An error the API answered with (RFC 9457), or status 0 when it could not be reached. */
export class ApiProblem extends Error {
  constructor(status, body = {}, headers = new Headers()) {
    super(body.detail || body.title || `The shop answered ${status}`);
    this.status = status;
    this.type = body.type || 'about:blank';
    this.title = body.title || '';
    this.detail = body.detail || this.message;
    this.errors = Array.isArray(body.errors) ? body.errors : [];
    this.body = body;
    this.headers = headers;
  }

  /** The message for one field (e.g. "shipping_address.postal_code"), if the API named it. */
  fieldMessage(field) {
    return this.errors.find((e) => e.field === field)?.message;
  }
}

const UNREACHABLE = {
  title: 'The shop could not be reached',
  detail: 'The shop could not be reached. Check your connection and try again.',
};

/** Send a request; resolves to {status, data, headers} or rejects with an ApiProblem. */
export async function request(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json', ...headers }, credentials: 'omit' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(apiUrl(path), init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiProblem(0, UNREACHABLE);
  }
  const type = response.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiProblem(response.status, data || { detail: `The shop answered ${response.status}.` },
      response.headers);
  }
  return { status: response.status, data, headers: response.headers };
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });
export const patch = (path, body, options = {}) => request('PATCH', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

/** A path segment, escaped. */
export const seg = (value) => encodeURIComponent(String(value));
