// The gateway's stderr while kafkajs talks to a broker: no TimeoutNegativeWarning
// (kafkajs's request queue arms a negative timer after each answer), while any
// other process warning still reaches the log.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { freePort } from "../test/support/free-port";
import { useOutboxRelay } from "../test/support/outbox-relay";
import { TEST_JWT_SECRET, uniqueId } from "../test/support/tokens";
import { waitUntil } from "../test/support/wait";

const fixture = useOutboxRelay("process-warnings-test");

test("kafkajs's negative-timeout warning is not printed; another warning is logged as a JSON line and still reaches another listener", async () => {
  const port = await freePort();
  const child = Bun.spawn(
    [
      process.execPath,
      // SIGUSR2: a warning of another kind.
      "--preload",
      join(import.meta.dir, "../test/support/emit-probe-warning.ts"),
      join(import.meta.dir, "main.ts"),
    ],
    {
      env: {
        ...process.env,
        JWT_SECRET: TEST_JWT_SECRET,
        GATEWAY_PORT: String(port),
        REDIS_URL: fixture.redis.url,
        KAFKA_BROKERS: fixture.broker.brokers,
        OUTBOX_RELAY_EVERY_MS: "20",
        LOG_LEVEL: "debug",
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  fixture.children.push(child);
  const lines: { level: number; msg: string }[] = [];
  const stdout = (async () => {
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += new TextDecoder().decode(chunk);
      const complete = pending.split("\n");
      pending = complete.pop() ?? "";
      for (const line of complete) if (line.startsWith("{")) lines.push(JSON.parse(line));
    }
  })();
  const stderr = new Response(child.stderr).text();
  await waitUntil(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    15_000,
    "gateway ready",
  );
  // One order change relayed to Kafka: kafkajs has had answers from the broker.
  const orderId = uniqueId("order");
  await fixture.changeOneOrder(orderId);
  await fixture.broker.waitForRecords(1, 10_000);
  child.kill("SIGUSR2");
  await waitUntil(
    () => lines.some((line) => line.msg.includes("ProbeWarning")),
    5_000,
    "the probe warning logged",
  );
  child.kill("SIGTERM");
  expect(await child.exited).toBe(0);
  // Nothing printed by the runtime: the probe went to the log (below), kafkajs's nowhere.
  expect(await stderr).not.toContain("TimeoutNegativeWarning");
  expect(await stderr).not.toContain("ProbeWarning");
  // The preload's own listener was left in place.
  expect(await stderr).toContain("the preload's listener heard the probe");
  await stdout;
  expect(lines.find((line) => line.msg.includes("ProbeWarning"))).toMatchObject({
    level: 40,
    msg: "ProbeWarning: a warning the gateway did not expect",
  });
  // kafkajs did arm its negative timer (the runtime warns once per process), and it was dropped.
  expect(lines.filter((line) => line.msg.includes("TimeoutNegativeWarning"))).toEqual([
    expect.objectContaining({
      level: 20,
      msg: "kafkajs request-queue TimeoutNegativeWarning dropped",
    }),
  ]);
}, 30_000);
