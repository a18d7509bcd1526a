// Ring membership against a real redis-server: what a leaving node writes as its last beat.
import { expect, test } from "bun:test";
import pino from "pino";
import { Registry } from "prom-client";
import { createTokenVerifier } from "../core/auth/token-verifier";
import { keys } from "../core/redis/keys";
import { createTrackingRing } from "../core/tracking-ring/tracking-ring";
import { useRedisConnection } from "../test/support/redis-connection";
import { TEST_JWT_SECRET, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";
import { createTrackingMetrics } from "./metrics";
import { createRingMembership } from "./ring-membership";
import { createWatchers } from "./watchers";

const fixture = useRedisConnection("ring-membership-test");
const logger = pino({ level: "silent" });
const TICK_MS = 100;
const TTL_MS = 300;

test("a node whose last beat is older than the TTL leaves with that beat: no ring lists it again", async () => {
  const { connection } = fixture;
  const self = { id: uniqueId("t"), url: "ws://127.0.0.1:1" };
  const membership = createRingMembership({
    connection,
    self,
    ringRefreshMs: TICK_MS,
    nodeTtlMs: TTL_MS,
    // No beat after the first: a node whose beats stopped landing (Redis away), as when Redis
    // comes back within one beat of the SIGTERM.
    heartbeatMs: 60_000,
    watchers: createWatchers({
      metrics: createTrackingMetrics(new Registry(), () => 0),
      limits: { conflateAboveBytes: 65_536, closeAboveBytes: 1 << 20, closeAfterStuckMs: 60_000 },
      seqRestartAfterMs: 120_000,
      publish: () => undefined,
      revocations: createTokenVerifier({ secret: TEST_JWT_SECRET }),
    }),
    onClaimLost: () => undefined,
    logger,
  });
  await membership.join();
  const beat = Number(await connection.client.zscore(keys.trackingNodes(), self.id));
  await waitUntil(async () => Date.now() > beat + TTL_MS + TICK_MS, 5_000, "the beat aged out");
  await membership.leave();
  // The last write of a leave gives the id's claim back.
  await waitUntil(
    async () => (await connection.client.exists(keys.trackingNodeClaim(self.id))) === 0,
    5_000,
    "the leave written",
  );
  // It used to write the chosen tick less the TTL: newer than the beat, so every ring listed
  // the node again for up to two ticks while it was gone.
  expect(Number(await connection.client.zscore(keys.trackingNodes(), self.id))).toBe(beat);
  const ring = createTrackingRing({ connection, ttlMs: TTL_MS, refreshMs: TICK_MS, logger });
  try {
    await ring.refresh();
    expect(ring.nodes().map((node) => node.id)).not.toContain(self.id);
  } finally {
    ring.stop();
  }
});
