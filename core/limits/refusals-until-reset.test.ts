import { expect, test } from "bun:test";
import { createRefusalsUntilReset } from "./refusals-until-reset";

test("remembers each key until its reset, drops it then, and never holds more than maxEntries (oldest forgotten first)", () => {
  let now = 1_000;
  const refusals = createRefusalsUntilReset({ maxEntries: 3, now: () => now });
  expect(refusals.leftMs("a")).toBe(0);
  refusals.remember("a", 2_000);
  refusals.remember("b", 2_000);
  expect([refusals.leftMs("a"), refusals.size()]).toEqual([1_000, 2]);
  refusals.remember("c", 2_000);
  refusals.remember("d", 2_000);
  // Full: "a", the oldest, made room.
  expect([refusals.leftMs("a"), refusals.leftMs("d"), refusals.size()]).toEqual([0, 1_000, 3]);
  refusals.forget("d");
  expect([refusals.leftMs("d"), refusals.size()]).toEqual([0, 2]);

  // The window resets: every entry of it is gone, whichever key is asked about.
  now = 2_000;
  expect(refusals.leftMs("z")).toBe(0);
  expect(refusals.size()).toBe(0);
  refusals.remember("b", 3_000);
  expect(refusals.leftMs("b")).toBe(1_000);

  // A flood of keys in one window: memory stays at maxEntries, the latest are remembered.
  for (let n = 0; n < 1_000; n++) refusals.remember(`flood-${n}`, 3_000);
  expect(refusals.size()).toBe(3);
  expect(refusals.leftMs("flood-999")).toBe(1_000);
  expect(refusals.leftMs("b")).toBe(0);
  expect(() => createRefusalsUntilReset({ maxEntries: 0 })).toThrow(/positive integer/);
});
