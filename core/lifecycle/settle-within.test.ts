import { expect, test } from "bun:test";
import { settleWithin } from "./settle-within";

test("the promise's value when it settles in time, `late` when it does not, its rejection as it is", async () => {
  expect(await settleWithin(Promise.resolve("read"), 1_000, "late")).toBe("read");
  expect(await settleWithin(new Promise<string>(() => {}), 10, "late")).toBe("late");
  await expect(settleWithin(Promise.reject(new Error("gone")), 1_000, "late")).rejects.toThrow(
    "gone",
  );
});
