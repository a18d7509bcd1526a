import { createUpstreamFetch } from "../../demo/upstream/upstream-app";

/**
 * The demo's stand-in order and search service, wrapped so tests can count
 * and inspect calls, slow it down, or make it fail.
 */
export type TestUpstream = ReturnType<typeof startTestUpstream>;

export function startTestUpstream() {
  const calls: { path: string; body: unknown }[] = [];
  const controls = { delayMs: 0, failWith: 0 };
  const upstream = createUpstreamFetch();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const body = request.method === "POST" ? await request.clone().json() : undefined;
      calls.push({ path: new URL(request.url).pathname, body });
      if (controls.delayMs > 0) await Bun.sleep(controls.delayMs);
      if (controls.failWith > 0)
        return Response.json({ error: "injected failure" }, { status: controls.failWith });
      return upstream(request);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    controls,
    stop: () => server.stop(true),
  };
}
