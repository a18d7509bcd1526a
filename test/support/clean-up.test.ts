import { expect, test } from "bun:test";
import { canListen } from "../../demo/ports";
import { cleanUpAll } from "./clean-up";
import { startRedis } from "./redis-server";

test("a step that fails does not leave what comes after it running, and its failure is still thrown", async () => {
  const redis = await startRedis();
  const cleanup = cleanUpAll(
    () => {
      throw new Error("gateway drain failed");
    },
    () => redis.stop(),
  );
  expect(cleanup).rejects.toThrow("gateway drain failed");
  await cleanup.catch(() => undefined);
  expect(await canListen(redis.port)).toBe(true);
});

test("every failure is told, in order; steps that pass leave nothing to tell", async () => {
  const ran: string[] = [];
  const failed = await cleanUpAll(
    () => ran.push("a"),
    async () => {
      ran.push("b");
      throw new Error("first");
    },
    () => {
      ran.push("c");
      throw new Error("second");
    },
  ).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(ran).toEqual(["a", "b", "c"]);
  expect(failed).toBeInstanceOf(AggregateError);
  expect((failed as AggregateError).errors.map((error: Error) => error.message)).toEqual([
    "first",
    "second",
  ]);
  expect(
    await cleanUpAll(
      () => undefined,
      async () => undefined,
    ),
  ).toBeUndefined();
});
