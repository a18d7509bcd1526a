import { expect, test } from "bun:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { LocationIngestService } from "../../proto/gen/delivery/tracking/v1/ingest_pb";
import { testToken, uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { RETRY_AFTER_MAX_MS, retryAfterMs } from "../backoff";
import { RiderClient } from "./rider-client";
import type { RiderClientEvents } from "./rider-client-api";
import { MemorySeqStore } from "./seq-store";

// The ingest's side (every 503 and its 429 carry retry-after, as a Connect header or a gRPC
// trailer) is tested against a real ingest in location-ingest/; here, what the app does with
// it: an ingest that refuses every call (the live stream, and the upload of the fixes kept
// meanwhile) with `refusal`, served by connect's in-memory router so the error crosses the
// Connect protocol as it would the network.
async function refusedRider(refusal: ConnectError) {
  const opened: number[] = [];
  const refuse = () => {
    opened.push(Date.now());
    throw refusal;
  };
  const ingest = createClient(
    LocationIngestService,
    createRouterTransport(({ service }) => {
      service(LocationIngestService, {
        // biome-ignore lint/correctness/useYield: refused before any answer, as a draining ingest does.
        async *streamPings() {
          refuse();
        },
        uploadPings: async () => refuse(),
      });
    }),
  );
  const retrying: RiderClientEvents["retrying"][] = [];
  const client = new RiderClient({
    ingest,
    token: await testToken(uniqueId("rider"), "rider", "london"),
    seqStore: new MemorySeqStore(),
    locate: () => ({ lat: 51.5, lng: -0.12, accuracyM: 5, speedMps: 0, headingDeg: 0 }),
    firstIntervalMs: 200,
    // Far below the 1 s the refusal asks for.
    backoff: { firstMs: 20, maxMs: 40 },
  });
  client.on("retrying", (event) => retrying.push(event));
  void client.start();
  return { client, opened, retrying };
}

test("a call refused UNAVAILABLE with retry-after: 1 is made again no sooner than 1 s, past the app's own backoff", async () => {
  const refusal = new ConnectError("server is draining", Code.Unavailable, {
    "retry-after": "1",
  });
  const { client, opened, retrying } = await refusedRider(refusal);
  await waitUntil(() => opened.length >= 2, 5_000, "a second call");
  await client.close();
  expect(retrying[0]?.delayMs).toBeGreaterThanOrEqual(1_000);
  const [first = 0, second = 0] = opened;
  expect(second - first).toBeGreaterThanOrEqual(990);
});

test("a refusal without retry-after is retried on the app's backoff alone", async () => {
  const { client, opened, retrying } = await refusedRider(
    new ConnectError("no route", Code.Unavailable),
  );
  await waitUntil(() => opened.length >= 3, 5_000, "calls again");
  await client.close();
  for (const { delayMs } of retrying) expect(delayMs).toBeLessThanOrEqual(40);
});

test("retryAfterMs reads delta-seconds (the first of a repeated header), at most a minute, and nothing else", () => {
  expect(retryAfterMs("2")).toBe(2_000);
  expect(retryAfterMs("0.5")).toBe(500);
  expect(retryAfterMs("2, 2")).toBe(2_000);
  expect(retryAfterMs("3600")).toBe(RETRY_AFTER_MAX_MS);
  expect(retryAfterMs("1e12")).toBe(RETRY_AFTER_MAX_MS);
  for (const value of [null, undefined, "", "0", "-1", "soon", "Wed, 21 Oct 2026 07:28:00 GMT"])
    expect(retryAfterMs(value)).toBe(0);
});
