// The API's page (/docs): Swagger UI over the shop's own OpenAPI document. A file of its own, not an inline
// script, so the page keeps the shop's Content-Security-Policy.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
