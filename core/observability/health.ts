import type { Registry } from "prom-client";

/** Resolves to undefined when ready, or a short reason why not. */
export type ReadinessCheck = () => Promise<string | undefined>;

/**
 * Serves /healthz (alive), /readyz (503 with the reason) and /metrics for a
 * Bun.serve fetch handler; answers undefined for any other path.
 */
export function createHealthRoutes(readiness: ReadinessCheck, registry: Registry) {
  return async function healthRoutes(request: Request): Promise<Response | undefined> {
    if (request.method !== "GET") return undefined;
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return Response.json({ status: "ok" });
    if (pathname === "/readyz") {
      const reason = await readiness().catch((error: unknown) => String(error));
      return reason === undefined
        ? Response.json({ status: "ready" })
        : Response.json({ status: "unavailable", reason }, { status: 503 });
    }
    if (pathname === "/metrics") {
      return new Response(await registry.metrics(), {
        headers: { "content-type": registry.contentType },
      });
    }
    return undefined;
  };
}
