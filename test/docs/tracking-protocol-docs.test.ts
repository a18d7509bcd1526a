// Every doc an app developer reads restates the tracking protocol: the
// close codes with what a client does next, and the frame subprotocols.
// They must say what core/protocol/tracking-protocol.ts (which the server,
// the live map and the client libraries read) says.
import { describe, expect, test } from "bun:test";
import {
  CLOSE,
  type ReconnectRule,
  TRACKING_SUBPROTOCOLS,
} from "../../core/protocol/tracking-protocol";
import { TrackingEventSchema } from "../../proto/gen/delivery/tracking/v1/tracking_event_pb";
import { eventFrame } from "../../tracking/frames";
import { backticked, readDocs, readRepoFile, sourceText, tableRows } from "./repo-docs";

const docs = await readDocs();
const doc = (path: string) => docs.get(path) as string;
const CODES = Object.values(CLOSE).map((close) => close.code);

/** The close-code table of a doc: code → the cell saying what the client does. */
function closeTable(text: string, ruleColumn: number): Map<number, string> {
  return new Map(
    tableRows(text)
      .filter(([code]) => /^\d{4}$/.test(code ?? ""))
      .map((cells) => [Number(cells[0]), cells[ruleColumn] ?? ""]),
  );
}

/** How each doc words each reconnect rule, at the start of its cell. */
const WORDING: Record<string, Record<ReconnectRule, string>> = {
  "docs/mobile-apps.md": {
    "follow-moved": "follow `moved` at once",
    backoff: "back off",
    "refresh-token": "refresh the token",
    never: "never",
  },
  "docs/contract.md": {
    "follow-moved": "reconnects at once to the URL of the `moved` frame|follows the `moved` frame",
    backoff: "reconnects after a backoff",
    "refresh-token": "gets a fresh token",
    never: "does not reconnect",
  },
};

describe("close codes", () => {
  for (const [path, wording] of Object.entries(WORDING))
    test(`${path} lists every close code with the rule the server and clients follow`, () => {
      const rows = closeTable(doc(path), 2);
      const wrong = Object.values(CLOSE)
        .filter(
          ({ code, reconnect }) =>
            !new RegExp(`^(${wording[reconnect]})`).test(rows.get(code) ?? ""),
        )
        .map(({ code, reconnect }) => `${code} (${reconnect}): ${rows.get(code) ?? "missing"}`);
      expect(wrong).toEqual([]);
      expect([...rows.keys()].sort()).toEqual([...CODES].sort());
    });

  test("clients/README.md's close table gives every code the rule reconnectRule follows", () => {
    // Rows like "| 4001 moved, 1012 draining (after `moved`) | `follow-moved` | ... |".
    const rows = tableRows(doc("clients/README.md")).filter(([closes]) =>
      /^\d{4}/.test(closes ?? ""),
    );
    const wrong = Object.values(CLOSE)
      .filter(
        ({ code, reconnect }) =>
          !rows.some(
            ([closes, rule]) => closes?.includes(String(code)) && rule === `\`${reconnect}\``,
          ),
      )
      .map(({ code, reconnect }) => `${code} (${reconnect})`);
    expect(wrong).toEqual([]);
    const named = rows.flatMap(([closes]) =>
      [...(closes ?? "").matchAll(/\b(\d{4})\b/g)].map((m) => Number(m[1])),
    );
    // 1006 is the network's, not ours: it takes the default rule (backoff).
    expect(
      [...new Set(named)].filter((code) => code !== 1006 && !CODES.includes(code as never)),
    ).toEqual([]);
  });

  test("proto/README.md names every close code in its reconnect summary", () => {
    const summary =
      /The close codes and what to do after\s+each \(([^)]*)\)/.exec(doc("proto/README.md"))?.[1] ??
      "";
    const missing = CODES.filter((code) => !summary.includes(String(code)));
    expect([summary.length > 0, missing]).toEqual([true, []]);
  });
});

describe("subprotocols", () => {
  const served = new Set<string>(Object.values(TRACKING_SUBPROTOCOLS));
  const named = (text: string) =>
    [...text.matchAll(/\btracking\.v\d+\.[a-z]+\b/g)].map((m) => m[0]);

  test("every frame subprotocol a doc, a .proto or a client names is one the server serves", async () => {
    const texts = [
      ...docs,
      ...(await Promise.all(
        [
          "proto/delivery/tracking/v1/tracking_event.proto",
          "clients/tracking-client/tracking-client.ts",
        ].map(async (path) => [path, await readRepoFile(path)] as const),
      )),
    ];
    const unknown = texts.flatMap(([path, text]) =>
      named(text)
        .filter((name) => !served.has(name))
        .map((name) => `${path}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  test("the app-facing docs name every served subprotocol", () => {
    const paths = ["README.md", "docs/contract.md", "docs/mobile-apps.md", "proto/README.md"];
    const missing = paths.flatMap((path) =>
      [...served]
        .filter((name) => !named(doc(path)).includes(name))
        .map((name) => `${path}: ${name}`),
    );
    expect(missing).toEqual([]);
  });
});

describe("tracking.v1.json frames", () => {
  // One event of each kind, as its proto3 JSON on the order's channel.
  const EVENTS = [
    '{"orderId":"o1","position":{"riderId":"r1","lat":51.5,"lng":-0.1,"headingDeg":90,"speedMps":4,"recordedAtMs":"1700000000000","seq":"7","receivedAtMs":"1700000000100"}}',
    '{"orderId":"o1","status":{"status":"ASSIGNED","version":"2","riderId":"r1"}}',
    '{"orderId":"o1","moved":{"url":"ws://127.0.0.1:8091"}}',
    '{"orderId":"o1","geofence":{"fence":"FENCE_LEFT_PICKUP","riderId":"r1","atMs":"1700000000000"}}',
  ];

  test("docs/contract.md names every field of each deprecated JSON frame", () => {
    const text = doc("docs/contract.md");
    const start = text.indexOf("`tracking.v1.json` (deprecated)");
    const described = new Set(backticked(text.slice(start, text.indexOf("\n- ", start))));
    const missing = EVENTS.flatMap((json) => {
      const frame = JSON.parse(eventFrame("o1", json)?.data("legacyJson") as string);
      return [`${frame.type}`, ...Object.keys(frame)].filter((name) => !described.has(name));
    });
    expect([start > 0, missing]).toEqual([true, []]);
  });
});

describe("TrackingEvent frames", () => {
  test("docs/contract.md's event list names every event and field of TrackingEvent as its JSON does", () => {
    const text = doc("docs/contract.md");
    const start = text.indexOf("- Events (`TrackingEvent`");
    const list = text.slice(start, text.indexOf("On connect", start)).replace(/\s+/g, " ");
    const missing: string[] = [];
    for (const member of TrackingEventSchema.oneofs[0]?.fields ?? []) {
      const part = new RegExp(`\`${member.jsonName}\` \\(([^)]*)\\)`).exec(list)?.[1];
      if (part === undefined) {
        missing.push(member.jsonName);
        continue;
      }
      const fields = member.message?.fields ?? [];
      // `moved` says its one field in words ("the URL of the node ...").
      for (const field of fields)
        if (!new RegExp(`\\b${field.jsonName}\\b`, "i").test(part))
          missing.push(`${member.jsonName}.${field.jsonName}`);
    }
    expect([start > 0, missing]).toEqual([true, []]);
  });
});

describe("handshake refusals", () => {
  test("every error code a tracking node answers before the upgrade is in the README's and the contract's tracking sections", async () => {
    const source = await sourceText("tracking/**/*.ts", "core/auth/order-access.ts");
    const answered = new Set(
      [...source.matchAll(/EdgeError\(\s*"([a-z_]+)"/g)].map((m) => m[1] as string),
    );
    expect(answered.size).toBeGreaterThan(8);
    const section = (path: string, from: string, to: string) => {
      const text = doc(path);
      const start = text.indexOf(from);
      return new Set(backticked(text.slice(start, text.indexOf(to, start))));
    };
    const sections = {
      "README.md": section("README.md", "## The tracking tier", "\n## "),
      "docs/contract.md": section("docs/contract.md", "## Tracking WebSockets", "\n## "),
    };
    const missing = Object.entries(sections).flatMap(([path, named]) =>
      [...answered].filter((code) => !named.has(code)).map((code) => `${path}: ${code}`),
    );
    expect(missing).toEqual([]);
  });
});
