import { afterAll, beforeAll, expect, test } from "bun:test";
import { keys } from "../../core/redis/keys";
import {
  describeFailover,
  type FailoverRig,
  killMasterUnderLoad,
  startFailoverRig,
  stepOrder,
} from "../support/failover-scenario";
import { seedOrder } from "../support/orders";
import { uniqueId } from "../support/tokens";
import { waitUntil } from "../support/wait";

// A Redis Cluster with a replica per master (1 s node timeout) under every tier.
let rig: FailoverRig;

beforeAll(async () => {
  rig = await startFailoverRig();
}, 60_000);

afterAll(async () => {
  await rig?.stop();
});

test("a change no replica confirms is not acknowledged, and the shard is refused until its replica is back", async () => {
  const { cluster, db } = rig;
  const orderId = uniqueId("order");
  const riderId = uniqueId("rider");
  await seedOrder(db, { orderId, customerId: "c1", riderId });
  const master = await cluster.masterOf(keys.order(orderId));
  const [replica] = await cluster.replicasOf(master);
  if (!replica) throw new Error("no replica");
  const asRider = { sub: riderId, role: "rider" as const };
  cluster.pause(replica);
  try {
    const unconfirmed = await stepOrder(rig, orderId, "READY", 2, {
      sub: "rest-1",
      role: "restaurant",
    });
    expect(unconfirmed.status).toBe(503);
    expect(unconfirmed.headers.get("retry-after")).toBe("1");
    // It ran on the master (the client must read before retrying) ...
    expect(await db.hget(keys.order(orderId), "version")).toBe("3");
    // ... and the next change on that shard is refused without running.
    expect((await stepOrder(rig, orderId, "PICKED_UP", 3, asRider)).status).toBe(503);
    expect(await db.hget(keys.order(orderId), "version")).toBe("3");
  } finally {
    cluster.resume(replica);
  }
  await waitUntil(
    async () => (await stepOrder(rig, orderId, "PICKED_UP", 3, asRider)).status === 200,
    15_000,
    "a confirmed change once the replica is back",
  );
  await cluster.waitUntilOk();
}, 30_000);

test("kill -9 of a master under load: streams stay open, 503 then recovery, customers see the courier again, no acknowledged order change lost", async () => {
  const outcome = await killMasterUnderLoad(rig);
  console.log(`failover: ${describeFailover(outcome)}`);
  expect(outcome.lost).toBe(0);
  expect(outcome.riderStreamOpen).toBe(true);
  expect(outcome.droppedPings).toBeGreaterThan(0);
  expect(outcome.statusAnswers.get(503) ?? 0).toBeGreaterThan(0);
  expect(outcome.statusAnswers.has(500) || outcome.createAnswers.has(500)).toBe(false);
  expect(outcome.shardReadOutageMs).toBeGreaterThan(0);
  // Changes on the failed-over shard are acknowledged again, and the customer sees the courier.
  expect(Number.isFinite(outcome.writesBackMs)).toBe(true);
  expect(Number.isFinite(outcome.mapBackMs)).toBe(true);
  // Orders on the other masters never noticed.
  expect(outcome.othersUntouched).toBe(true);
  expect(outcome.createAnswers.get(201) ?? 0).toBeGreaterThan(0);
}, 90_000);
