import { expect, test } from "bun:test";
import { waitUntil } from "../../test/support/wait";
import { createBenchProgress } from "./progress";

test("each line carries the time spent and what the plan leaves; an overrunning part still shows a little left", () => {
  let now = 1_000_000;
  const lines: string[] = [];
  const progress = createBenchProgress(
    [
      { name: "gateway", seconds: 60 },
      { name: "geo", seconds: 120 },
    ],
    { write: (text) => lines.push(text), terminal: false, now: () => now },
  );
  try {
    progress.part("gateway");
    progress.report("gateway: bare route, 10 s");
    now += 30_000;
    progress.report("gateway: order status, 10 s");
    now += 40_000; // the gateway part overran its 60 s
    progress.report("gateway: offers");
    progress.part("geo");
    now += 60_000;
    progress.report("geo: 5 km");
    now += 3_600_000;
    progress.report("geo: stuck");
  } finally {
    progress.stop();
  }
  expect(lines).toEqual([
    "[bench 0:00 elapsed, ~3:00 left] gateway: bare route, 10 s\n",
    "[bench 0:30 elapsed, ~2:30 left] gateway: order status, 10 s\n",
    "[bench 1:10 elapsed, ~2:05 left] gateway: offers\n",
    "[bench 2:10 elapsed, ~1:00 left] geo: 5 km\n",
    "[bench 1:02:10 elapsed, ~0:05 left] geo: stuck\n",
  ]);
});

test("in a log, a quiet step is repeated with the time so far; on a terminal one status line refreshes", async () => {
  const logged: string[] = [];
  const log = createBenchProgress([{ name: "fanout", seconds: 600 }], {
    write: (text) => logged.push(text),
    terminal: false,
    heartbeatMs: 500,
  });
  const shown: string[] = [];
  const tty = createBenchProgress([{ name: "fanout", seconds: 600 }], {
    write: (text) => shown.push(text),
    terminal: true,
  });
  try {
    for (const progress of [log, tty]) {
      progress.part("fanout");
      progress.report("fanout: 10000 sockets connecting");
    }
    await waitUntil(() => logged.some((line) => line.includes("still: fanout: 10000 sockets")));
    await waitUntil(() => shown.some((text) => text.startsWith("\r\x1b[2K[bench")));
    tty.report("fanout: measuring");
  } finally {
    log.stop();
    tty.stop();
  }
  // The status line is cleared before the next report, so reports stay one per line.
  expect(shown.at(-2)).toBe("\r\x1b[2K");
  expect(shown.at(-1)).toMatch(/^\[bench 0:0\d elapsed, ~9:5\d left\] fanout: measuring\n$/);
});
