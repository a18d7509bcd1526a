// The API reference page's script: Swagger UI (served by the gateway from
// node_modules) over /openapi.json. `/docs#token=<jwt>` fills in the bearer
// token, as the live map's link does, so "Try it out" works at once.

interface SwaggerUi {
  preauthorizeApiKey(scheme: string, value: string): void;
}
declare const SwaggerUIBundle: (options: Record<string, unknown>) => SwaggerUi;

const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
const ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#reference",
  // No call to the public validator service: the page needs nothing beyond the gateway.
  validatorUrl: null,
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  onComplete() {
    if (token) ui.preauthorizeApiKey("bearer", token);
  },
});
