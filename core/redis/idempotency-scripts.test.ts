import { describe, expect, test } from "bun:test";
import { useScriptConnections } from "../../test/support/script-connections";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { beginIdempotent, finishIdempotent, renewIdempotent } from "./idempotency-scripts";
import { keys } from "./keys";
import { holdLease, releaseLease } from "./leases";
import { createOrderRecord } from "./order-record";

const connections = useScriptConnections();
/** A finish that keeps no answer: the key is released for a new attempt. */
const RELEASE = { status: 0, body: "", keepMs: 0 };

describe.each(["standalone", "cluster"] as const)(
  "idempotency and outbox scripts on %s",
  (mode) => {
    test("one claim per key under concurrency; mismatch, in flight with its lease, replay and release", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const base = { customerId: uniqueId("cust"), key: uniqueId("key"), requestHash: "h1" };
      const attempts = Array.from({ length: 30 }, (_, i) => ({ ...base, owner: `o${i}` }));
      const starts = await Promise.all(
        attempts.map((claim) => beginIdempotent(client, claim, 10_000)),
      );
      expect(starts.filter((s) => s.kind === "started")).toHaveLength(1);
      const inFlight = starts.filter((s) => s.kind === "in_flight");
      expect(inFlight).toHaveLength(29);
      for (const s of inFlight) expect(s).toMatchObject({ leaseLeftMs: expect.any(Number) });
      const owner = attempts[starts.findIndex((s) => s.kind === "started")] ?? attempts[0];
      if (!owner) throw new Error("no owner");
      const other = { ...base, requestHash: "h2", owner: "o-other" };
      expect((await beginIdempotent(client, other, 10_000)).kind).toBe("mismatch");
      // Only the attempt holding the lease may renew or finish it, even with the same body.
      const sameBodyOtherAttempt = { ...base, owner: "o-late" };
      expect(await renewIdempotent(client, sameBodyOtherAttempt, 10_000)).toBe(false);
      expect(
        await finishIdempotent(connection, sameBodyOtherAttempt, {
          status: 201,
          body: "x",
          keepMs: 10_000,
        }),
      ).toBe(false);
      expect(
        await finishIdempotent(connection, owner, {
          status: 201,
          body: '{"id":1}',
          keepMs: 10_000,
        }),
      ).toBe(true);
      expect(await beginIdempotent(client, sameBodyOtherAttempt, 10_000)).toEqual({
        kind: "replay",
        status: 201,
        body: '{"id":1}',
      });
      const released = { ...owner, key: uniqueId("key") };
      await beginIdempotent(client, released, 10_000);
      expect(await finishIdempotent(connection, released, RELEASE)).toBe(true);
      expect((await beginIdempotent(client, released, 10_000)).kind).toBe("started");
    });

    test("a lease runs out unless renewed; after it ran out the old owner can neither renew nor finish", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const first = {
        customerId: uniqueId("cust"),
        key: uniqueId("key"),
        requestHash: "h",
        owner: "a",
      };
      expect((await beginIdempotent(client, first, 300)).kind).toBe("started");
      expect(await renewIdempotent(client, first, 5_000)).toBe(true);
      const idemKey = keys.idempotency(first.customerId, first.key);
      expect(await client.pttl(idemKey)).toBeGreaterThan(1_000);
      await client.pexpire(idemKey, 50);
      await waitUntil(async () => (await client.exists(idemKey)) === 0, 2_000);
      expect(await renewIdempotent(client, first, 5_000)).toBe(false);
      const second = { ...first, owner: "b" };
      expect((await beginIdempotent(client, second, 5_000)).kind).toBe("started");
      expect(await finishIdempotent(connection, first, RELEASE)).toBe(false);
      expect((await beginIdempotent(client, first, 5_000)).kind).toBe("in_flight");
    });

    test("create-order-record writes a record once and never resets it", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const order = {
        orderId: uniqueId("order"),
        customerId: "c1",
        city: "london",
        restaurantId: "r1",
        pickup: { lat: 51.5, lng: -0.1 },
        dropoff: { lat: 51.51, lng: -0.11 },
        status: "CONFIRMED",
        version: 1,
      };
      expect(await createOrderRecord(connection, order)).toBe(true);
      await connection.client.hset(keys.order(order.orderId), "status", "ASSIGNED", "version", 2);
      expect(await createOrderRecord(connection, order)).toBe(false);
      expect(
        await connection.client.hmget(keys.order(order.orderId), "status", "version", "city"),
      ).toEqual(["ASSIGNED", "2", "london"]);
    });

    test("a lease has one holder at a time; only its holder renews or gives it back", async () => {
      const connection = connections[mode];
      if (!connection) throw new Error("no connection");
      const { client } = connection;
      const lease = keys.outboxLease(7);
      await client.del(lease);
      const outcomes = await Promise.all(
        ["g1", "g2", "g3"].map((holder) => holdLease(client, lease, holder, 10_000)),
      );
      expect(outcomes.filter((o) => o === "taken")).toHaveLength(1);
      const holder = ["g1", "g2", "g3"][outcomes.indexOf("taken")] ?? "";
      const other = holder === "g1" ? "g2" : "g1";
      expect(await holdLease(client, lease, holder, 20_000)).toBe("renewed");
      expect(await client.pttl(lease)).toBeGreaterThan(10_000);
      expect(await releaseLease(client, lease, other)).toBe(false);
      expect(await holdLease(client, lease, other, 10_000)).toBe("held");
      expect(await releaseLease(client, lease, holder)).toBe(true);
      expect(await holdLease(client, lease, other, 10_000)).toBe("taken");
      await client.del(lease);
    });
  },
);
