import { expect, test } from "bun:test";
import { CLOSE, type ReconnectRule } from "../core/protocol/tracking-protocol";

// docs/mobile-apps.md restates the close-code table for Swift/Kotlin apps:
// it must name every code with the rule the server and clients follow.
const WORDING: Record<ReconnectRule, string> = {
  "follow-moved": "follow `moved` at once",
  backoff: "back off",
  "refresh-token": "refresh the token",
  never: "never",
};

test("docs/mobile-apps.md lists every close code with its reconnect rule", async () => {
  const doc = await Bun.file(new URL("../docs/mobile-apps.md", import.meta.url)).text();
  const rows = new Map(
    [...doc.matchAll(/^\| (\d{4}) +\| [^|]+\| ([^|]+)\|$/gm)].map((m) => [Number(m[1]), m[2]]),
  );
  for (const { code, reconnect } of Object.values(CLOSE)) {
    expect([code, rows.get(code)?.startsWith(WORDING[reconnect])]).toEqual([code, true]);
  }
  expect([...rows.keys()].sort()).toEqual(
    Object.values(CLOSE)
      .map((c) => c.code)
      .sort(),
  );
});
