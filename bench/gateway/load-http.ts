// An HTTP load process (autocannon) for the gateway bench. Prints one JSON line.
//   bun bench/gateway/load-http.ts --url http://127.0.0.1:8080/healthz --seconds 10 [--rate 10000]
//     [--token <jwt>] [--offers <n> --offer-prefix bench-offer- ]
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8080/healthz" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "100" },
    rate: { type: "string", default: "0" },
    token: { type: "string" },
    /** POST /v1/dispatch/offers over this many seeded orders, each to its own rider. */
    offers: { type: "string", default: "0" },
    "offer-prefix": { type: "string", default: "bench-offer-" },
  },
});

const offers = Number(args.offers);
let next = 0;
const headers: Record<string, string> = args.token ? { authorization: `Bearer ${args.token}` } : {};
const result = await autocannon({
  url: args.url ?? "",
  connections: Number(args.connections),
  duration: Number(args.seconds),
  ...(Number(args.rate) > 0 ? { overallRate: Number(args.rate) } : {}),
  headers,
  ...(offers > 0
    ? {
        method: "POST",
        requests: [
          {
            setupRequest(request: autocannon.Request) {
              const i = next++ % offers;
              const body = {
                orderId: `${args["offer-prefix"]}${i}`,
                riderId: `bench-offer-rider-${next}`,
                city: "london",
                ttlMs: 60_000,
              };
              return {
                ...request,
                method: "POST" as const,
                headers: { ...headers, "content-type": "application/json" },
                body: JSON.stringify(body),
              };
            },
          },
        ],
      }
    : {}),
});
console.log(
  JSON.stringify({
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  }),
);
process.exit(0);
