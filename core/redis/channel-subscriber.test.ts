// The shared subscriber connection: a channel wanted before the connection
// is ready (a rider's stream opened right after start, say) is subscribed
// once it is, without a warning: nothing failed, and the ready handler
// subscribes every wanted channel anyway.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Cluster, Redis } from "ioredis";
import pino from "pino";
import { useRedisConnection } from "../../test/support/redis-connection";
import { type RedisCluster, startRedisCluster } from "../../test/support/redis-server";
import { uniqueId } from "../../test/support/tokens";
import { waitUntil } from "../../test/support/wait";
import { settleWithin } from "../lifecycle/settle-within";
import { createChannelSubscriber } from "./channel-subscriber";
import { connectRedis, type RedisConnection } from "./client";

const fixture = useRedisConnection("channel-subscriber-test");

/** A subscriber on the fixture's connection, its messages and its log lines at warn or above kept. */
function recordingSubscriber() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  const messages: string[] = [];
  const subscriber = createChannelSubscriber(fixture.connection, logger, (_, payload) =>
    messages.push(payload),
  );
  return { subscriber, messages, warnings: () => lines.filter((line) => line.level >= 40) };
}

/** A channel subscriber on `connection` that keeps each announcement (onResubscribed) it makes. */
function announcingSubscriber(
  connection: RedisConnection,
  onMessage: (channel: string, payload: string) => void = () => {},
) {
  const announced: string[][] = [];
  const channels = createChannelSubscriber(
    connection,
    pino({ level: "silent" }),
    onMessage,
    (list) => announced.push([...list]),
  );
  return { channels, announced };
}

test("a channel added before the subscriber connection is ready is subscribed once it is, without a warning", async () => {
  const { subscriber, messages, warnings } = recordingSubscriber();
  // At once: its connection is still opening.
  subscriber.add("test-channel");
  expect(await settleWithin(subscriber.subscribed("test-channel"), 5_000, "late")).toBeUndefined();
  await fixture.connection.client.publish("test-channel", "hello");
  await waitUntil(() => messages.length > 0, 5_000, "the message");
  expect(messages).toEqual(["hello"]);
  expect(warnings()).toEqual([]);
  subscriber.remove("test-channel");
});

test("a channel added and removed before the subscriber connection is ready costs no command and no warning", async () => {
  const { subscriber, messages, warnings } = recordingSubscriber();
  subscriber.add("gone-channel");
  subscriber.remove("gone-channel");
  // A channel wanted after it: once it is subscribed, the connection was ready a while.
  subscriber.add("kept-channel");
  expect(await settleWithin(subscriber.subscribed("kept-channel"), 5_000, "late")).toBeUndefined();
  await fixture.connection.client.publish("gone-channel", "not for us");
  await fixture.connection.client.publish("kept-channel", "hello");
  await waitUntil(() => messages.length > 0, 5_000, "the message");
  expect(messages).toEqual(["hello"]);
  expect(warnings()).toEqual([]);
  subscriber.remove("kept-channel");
});

/** The project's connection, handing the test the subscriber connection it creates. */
function capturingSubscriber(connection: RedisConnection): {
  connection: RedisConnection;
  subscriber: () => Redis | Cluster;
} {
  let created: Redis | Cluster | undefined;
  return {
    connection: {
      ...connection,
      createSubscriber: () => {
        created = connection.createSubscriber();
        return created;
      },
    },
    subscriber: () => {
      if (!created) throw new Error("no subscriber connection yet");
      return created;
    },
  };
}

function once(emitter: Redis | Cluster, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

/** PUBSUB NUMSUB (or SHARDNUMSUB) as channel → subscriber connections. */
async function numsub(
  db: Redis,
  channels: string[],
  sub: "NUMSUB" | "SHARDNUMSUB" = "NUMSUB",
): Promise<Record<string, number>> {
  const reply = (await db.call("PUBSUB", sub, ...channels)) as (string | number)[];
  const counts: Record<string, number> = {};
  for (let i = 0; i < reply.length; i += 2) counts[String(reply[i])] = Number(reply[i + 1]);
  return counts;
}

test("a channel removed while the subscriber connection is down stays unsubscribed after the reconnect; a kept one is subscribed again, with one SUBSCRIBE", async () => {
  const { connection, subscriber } = capturingSubscriber(fixture.connection);
  const channels = createChannelSubscriber(connection, pino({ level: "silent" }), () => {});
  channels.add("rider:gone");
  channels.add("rider:stays");
  await channels.subscribed("rider:gone");
  await channels.subscribed("rider:stays");
  const db = new Redis(fixture.redis.url);
  try {
    await db.config("RESETSTAT");
    const closed = once(subscriber(), "close");
    await db.call("CLIENT", "KILL", "TYPE", "pubsub");
    await closed;
    expect(subscriber().status).not.toBe("ready");
    channels.remove("rider:gone");
    expect(await settleWithin(channels.subscribed("rider:stays"), 10_000, "late")).toBeUndefined();
    expect(await numsub(db, ["rider:gone", "rider:stays"])).toEqual({
      "rider:gone": 0,
      "rider:stays": 1,
    });
    expect([...channels.channels]).toEqual(["rider:stays"]);
    // ioredis's own re-subscribe would have sent a second SUBSCRIBE (with both channels).
    const stats = await db.info("commandstats");
    expect(stats).toMatch(/cmdstat_subscribe:calls=1,/);
  } finally {
    channels.remove("rider:stays");
    db.disconnect();
  }
});

describe("in cluster mode", () => {
  let cluster: RedisCluster;
  let clusterConnection: RedisConnection;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    clusterConnection = await connectRedis(
      { mode: "cluster", nodes: cluster.nodes },
      "channel-subscriber-cluster-test",
      pino({ level: "silent" }),
    );
  }, 30_000);
  afterAll(async () => {
    await clusterConnection?.close();
    await cluster?.stop();
  });

  test("a channel removed while the cluster connection is away is not re-subscribed when it is back; a kept one is, once", async () => {
    const { connection, subscriber } = capturingSubscriber(clusterConnection);
    const { channels, announced } = announcingSubscriber(connection);
    channels.add("rider:gone");
    channels.add("rider:stays");
    await channels.subscribed("rider:gone");
    await channels.subscribed("rider:stays");
    const nodeOf = async (channel: string) => {
      const port = await cluster.masterOf(channel);
      return new Redis(port, "127.0.0.1");
    };
    const [gone, stays] = [await nodeOf("rider:gone"), await nodeOf("rider:stays")];
    try {
      announced.length = 0;
      // The client's own outage: every connection dropped, the cluster reconnecting.
      const closed = once(subscriber(), "close");
      subscriber().disconnect(true);

      await closed;

      channels.remove("rider:gone");
      await once(subscriber(), "ready");

      expect(
        await settleWithin(channels.subscribed("rider:stays"), 10_000, "late"),
      ).toBeUndefined();
      // The sharded subscribers re-subscribe after the cluster is ready: wait for the kept one.
      const kept = () => numsub(stays, ["rider:stays"], "SHARDNUMSUB");
      await waitUntil(async () => (await kept())["rider:stays"] === 1, 10_000, "rider:stays");
      expect(await kept()).toEqual({ "rider:stays": 1 });
      // The group re-subscribes every slot's channels at once: the removed one would be back too.
      expect(await numsub(gone, ["rider:gone"], "SHARDNUMSUB")).toEqual({ "rider:gone": 0 });
      // Its user hears that the kept one may have missed messages (once: not again per master).
      expect(announced).toEqual([["rider:stays"]]);
    } finally {
      channels.remove("rider:stays");
      gone.disconnect();
      stays.disconnect();
    }
  });

  /**
   * The project's cluster connection whose command client's slot map disagrees with the
   * subscriber's until `open()`, and whose slot refreshes wait for it: the announcement after
   * a dropped subscriber connection then waits as long as the test wants (the real wait is a
   * few seconds at most). Redis, the cluster and the subscriber are real.
   */
  function stalledCommands() {
    const captured = capturingSubscriber(clusterConnection);
    let opened = false;
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = () => {
        opened = true;
        resolve();
      };
    });
    const stalled = { refreshes: 0 };
    const client = new Proxy(clusterConnection.client, {
      get(target, property) {
        if (property === "slots") return opened ? Reflect.get(target, property, target) : [];
        if (property === "refreshSlotsCache")
          return (done: () => void) => {
            stalled.refreshes++;
            gate.then(done);
          };
        return Reflect.get(target, property, target);
      },
    });
    return { ...captured, connection: { ...captured.connection, client }, stalled, open };
  }

  /** Kills the pubsub connections of the master serving `channel`; resolves once the re-subscribe waits on the slot map. */
  async function dropSubscriberOf(channel: string, stalled: { refreshes: number }) {
    const master = new Redis(await cluster.masterOf(channel), "127.0.0.1");
    try {
      await master.call("CLIENT", "KILL", "TYPE", "pubsub");
    } finally {
      master.disconnect();
    }
    await waitUntil(() => stalled.refreshes > 0, 10_000, "the announcement's wait");
  }

  test("an announcement that waited on the command connection's slot map names no channel removed meanwhile", async () => {
    const { connection, subscriber, stalled, open } = stalledCommands();
    const { channels, announced } = announcingSubscriber(connection);
    await once(subscriber(), "ready");
    const port = await cluster.masterOf(uniqueId("slot"));
    const [kept, gone] = [await channelOn(port), await channelOn(port)];
    for (const channel of [kept, gone]) {
      channels.add(channel);
      await channels.subscribed(channel);
    }
    try {
      await dropSubscriberOf(kept, stalled);
      channels.remove(gone);
      open();
      await waitUntil(() => announced.length > 0, 10_000, "the announcement");
      expect(announced).toEqual([[kept]]);
    } finally {
      open();
      channels.remove(kept);
    }
  });

  test("an announcement that waited on the command connection's slot map is not made once the subscriber is closed", async () => {
    const { connection, subscriber, stalled, open } = stalledCommands();
    const { channels, announced } = announcingSubscriber(connection);
    await once(subscriber(), "ready");
    const channel = await channelOn(await cluster.masterOf(uniqueId("slot")));
    channels.add(channel);
    await channels.subscribed(channel);
    try {
      await dropSubscriberOf(channel, stalled);
      const ended = once(subscriber(), "end");
      subscriber().disconnect();
      await ended;
      open();
      // The wait's refresh answered (the maps now agree), then a turn of the event loop for
      // the announcement.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect([stalled.refreshes, announced]).toEqual([1, []]);
    } finally {
      open();
    }
  });

  /** A new channel name whose slot the master on `port` serves (or, with `not`, another master). */
  async function channelOn(port: number, not = false): Promise<string> {
    for (;;) {
      const channel = `rider:{${uniqueId("c")}}:inbox`;
      if (((await cluster.masterOf(channel)) === port) !== not) return channel;
    }
  }

  test("one master's subscriber connection dropped while the cluster stays ready: its channels, and only those, are subscribed again and announced; one removed meanwhile stays away", async () => {
    const { connection, subscriber } = capturingSubscriber(clusterConnection);
    const messages: string[] = [];
    const { channels, announced } = announcingSubscriber(connection, (channel, payload) =>
      messages.push(`${channel} ${payload}`),
    );
    // Ready first: channels added before it would be announced by the first subscribe.
    await once(subscriber(), "ready");
    const port = await cluster.masterOf(uniqueId("slot"));
    const [hit, gone, elsewhere] = [
      await channelOn(port),
      await channelOn(port),
      await channelOn(port, true),
    ];
    for (const channel of [hit, gone, elsewhere]) {
      channels.add(channel);
      await channels.subscribed(channel);
    }
    const master = new Redis(port, "127.0.0.1");
    try {
      // In one round trip: the message is published while this master holds no subscription.
      const replies = await master
        .pipeline()
        .call("CLIENT", "KILL", "TYPE", "pubsub")
        .spublish(hit, "in the gap")
        .exec();
      // Killed: this subscriber's connection (and any an earlier test left on that master).
      const [killed, receivers] = [replies?.[0]?.[1], replies?.[1]?.[1]];
      expect([Number(killed) >= 1, receivers]).toEqual([true, 0]);
      channels.remove(gone);
      await waitUntil(() => announced.length > 0, 10_000, "the announcement");
      expect(announced).toEqual([[hit]]);
      await clusterConnection.client.spublish(hit, "after");
      await waitUntil(() => messages.length > 0, 5_000, "the message");
      expect(messages).toEqual([`${hit} after`]);
      expect(await numsub(master, [hit, gone], "SHARDNUMSUB")).toEqual({ [hit]: 1, [gone]: 0 });
    } finally {
      channels.remove(hit);
      channels.remove(elsewhere);
      master.disconnect();
    }
  });
});
