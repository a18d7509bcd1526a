// clients/README.md is what an app developer reads first: its TypeScript
// examples must type-check against the client libraries as built (an option
// renamed, an event's payload changed, a moved module fails here), and its
// lists of options, events, states and stop reasons must be the clients'.
import { describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import type {
  RiderClientEvents,
  RiderClientOptions,
  RiderState,
  RiderStopReason,
} from "../../clients/rider-client/rider-client-api";
import type {
  StopReason,
  TrackingClientEvents,
  TrackingClientOptions,
  TrackingState,
} from "../../clients/tracking-client/tracking-client";
import { backticked, ROOT, readRepoFile, tableRows } from "./repo-docs";

// What the examples leave to the app: its ids, token, screens and GPS.
const APP_SIDE = `
declare const orderId: string;
declare const token: string;
declare const myApp: { freshToken(): Promise<string> };
declare function draw(event: object): void;
declare function showWhy(reason: string): void;
declare function askTheRider(offer: object, timeLeftMs: () => number): void;
declare function sayAnotherDeviceIsLive(): void;
declare const gps: {
  current(): { lat: number; lng: number; accuracyM: number; speedMps: number; headingDeg: number } | undefined;
};
`;

test("every TypeScript example in clients/README.md type-checks against the clients", async () => {
  const readme = await readRepoFile("clients/README.md");
  const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  expect(examples.length).toBe(2);
  // Under the repo (git-ignored .tmp/), so the examples' "./clients/..." imports resolve.
  await mkdir(join(ROOT, ".tmp"), { recursive: true });
  const dir = await mkdtemp(join(ROOT, ".tmp", "client-examples-"));
  try {
    // Each example sits at the repo's root in the README: "./clients/..." from there.
    const files = examples.map((code, i) => {
      const name = `example-${i}.ts`;
      return [name, code.replaceAll('from "./', 'from "../../')] as const;
    });
    for (const [name, code] of files) await Bun.write(join(dir, name), code);
    await Bun.write(join(dir, "app-side.d.ts"), APP_SIDE);
    await Bun.write(
      join(dir, "tsconfig.json"),
      JSON.stringify({ extends: "../../tsconfig.json", include: ["*.ts"] }),
    );
    const tsc = Bun.spawn([join(ROOT, "node_modules", ".bin", "tsc"), "--noEmit", "-p", dir], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const output =
      (await new Response(tsc.stdout).text()) + (await new Response(tsc.stderr).text());
    expect({ exitCode: await tsc.exited, output }).toEqual({ exitCode: 0, output: "" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

// Each a Record over the type's keys or members, so tsc fails when the
// client gains or loses one and this list does not follow.
const names = (record: Record<string, true>) => Object.keys(record).sort();
const CLIENTS = {
  followOrder: {
    section: "## Customer: `followOrder`",
    options: names({
      orderId: true,
      token: true,
      gatewayUrl: true,
      refreshToken: true,
      frames: true,
      afterSeq: true,
      nodeUrl: true,
      backoff: true,
    } satisfies Record<keyof TrackingClientOptions, true>),
    events: names({
      event: true,
      state: true,
      retrying: true,
      stopped: true,
    } satisfies Record<keyof TrackingClientEvents, true>),
    states: names({
      "looking up": true,
      connecting: true,
      open: true,
      waiting: true,
      stopped: true,
    } satisfies Record<TrackingState, true>),
    stopReasons: names({
      closed: true,
      "order ended": true,
      "token expired": true,
      "token revoked": true,
      "not allowed": true,
      "not found": true,
      refused: true,
    } satisfies Record<StopReason, true>),
  },
  RiderClient: {
    section: "## Rider: `RiderClient`",
    options: names({
      ingest: true,
      token: true,
      refreshToken: true,
      seqStore: true,
      locate: true,
      locateTimeoutMs: true,
      firstIntervalMs: true,
      maxBacklog: true,
      uploadChunk: true,
      backoff: true,
    } satisfies Record<keyof RiderClientOptions, true>),
    events: names({
      ack: true,
      offer: true,
      reconnect: true,
      retrying: true,
      uploaded: true,
      backlogDropped: true,
      noFix: true,
      state: true,
      stopped: true,
    } satisfies Record<keyof RiderClientEvents, true>),
    states: names({
      connecting: true,
      streaming: true,
      uploading: true,
      offline: true,
      stopped: true,
    } satisfies Record<RiderState, true>),
    stopReasons: names({
      closed: true,
      superseded: true,
      "token expired": true,
      "token revoked": true,
      refused: true,
    } satisfies Record<RiderStopReason, true>),
  },
};

describe("clients/README.md's reference lists", async () => {
  const readme = await readRepoFile("clients/README.md");
  for (const [client, expected] of Object.entries(CLIENTS))
    test(`${client}: options, events, states and stop reasons are the client's`, () => {
      const start = readme.indexOf(expected.section);
      const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
      const options = /\nOptions: ([\s\S]*?)\.\s+Read-only:/.exec(section)?.[1] ?? "";
      // The event table: rows whose first cell is one `name`.
      const events = tableRows(section).filter(([first]) => /^`\w+`$/.test(first ?? ""));
      const cell = (event: string, column: number) =>
        backticked(events.find(([first]) => first === `\`${event}\``)?.[column] ?? "");
      const documented = {
        options: [...new Set(backticked(options).filter((name) => /^\w+$/.test(name)))].sort(),
        events: events.map(([first]) => (first as string).slice(1, -1)).sort(),
        states: cell("state", 1).sort(),
        stopReasons: cell("stopped", 2).sort(),
      };
      const { section: _, ...code } = expected;
      expect(documented).toEqual(code);
    });
});
