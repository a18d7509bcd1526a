import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import type { GatewayEnv } from "../context";

const PAGE_HEADERS = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  // Everything from this origin; Swagger UI sets inline styles and draws icons from data: URLs.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
};

interface Asset {
  type: string;
  body: Uint8Array<ArrayBuffer>;
  gzipped: Uint8Array<ArrayBuffer>;
}

let assets: Promise<Map<string, Asset>> | undefined;

/** The page, its script (bundled once with Bun.build) and Swagger UI's files from node_modules, each gzipped once. */
function loadAssets(): Promise<Map<string, Asset>> {
  assets ??= (async () => {
    const folder = new URL("./reference-page/", import.meta.url);
    const bundle = await Bun.build({
      entrypoints: [fileURLToPath(new URL("api-reference.ts", folder))],
      target: "browser",
      format: "esm",
    });
    const [script] = bundle.outputs;
    if (!bundle.success || !script)
      throw new AggregateError(bundle.logs, "API reference bundle failed");
    const swaggerUi = (name: string) =>
      Bun.file(Bun.resolveSync(`swagger-ui-dist/${name}`, import.meta.dir)).bytes();
    const files: [string, string, Promise<Uint8Array<ArrayBuffer>>][] = [
      ["/docs", "text/html; charset=utf-8", Bun.file(new URL("index.html", folder)).bytes()],
      [
        "/docs/api-reference.js",
        "text/javascript; charset=utf-8",
        script.arrayBuffer().then((b) => new Uint8Array(b)),
      ],
      ["/docs/swagger-ui.css", "text/css; charset=utf-8", swaggerUi("swagger-ui.css")],
      ["/docs/favicon-32x32.png", "image/png", swaggerUi("favicon-32x32.png")],
      [
        "/docs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        swaggerUi("swagger-ui-bundle.js"),
      ],
    ];
    const loaded = new Map<string, Asset>();
    for (const [path, type, bytes] of files) {
      const body = await bytes;
      loaded.set(path, { type, body, gzipped: new Uint8Array(Bun.gzipSync(body)) });
    }
    return loaded;
  })();
  return assets;
}

/**
 * `GET /openapi.json` (the document, serialized once) and the API reference
 * page at `/docs` with its assets: nothing is fetched from elsewhere.
 */
export async function apiReferenceRoutes(document: object) {
  const json = JSON.stringify(document);
  const files = await loadAssets();
  const app = new Hono<GatewayEnv>().get("/openapi.json", (c) =>
    c.body(json, 200, { "content-type": "application/json", "cache-control": "no-cache" }),
  );
  for (const [path, asset] of files) {
    app.get(path, (c) => {
      const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
      // Appended: the CORS middleware's Vary (Origin) stays.
      c.header("Vary", "Accept-Encoding", { append: true });
      return c.body(gzip ? asset.gzipped : asset.body, 200, {
        ...PAGE_HEADERS,
        "content-type": asset.type,
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      });
    });
  }
  return app;
}
