import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium } from "../test/support/browser";
import { freePort } from "../test/support/redis-server";

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

/** Opens the live map in headless Chromium: riders drawn, an order followed, the picture moving, no errors. */
async function checkLiveMap(link: string): Promise<void> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(link);
    // Riders are drawn, and at least one order's frames arrived over its tracking node's socket.
    await page.waitForFunction(
      () => Number(document.body.dataset.riders) > 0 && Number(document.body.dataset.frames) > 0,
      undefined,
      { timeout: 30_000 },
    );
    const first = await page.locator("canvas").screenshot();
    await Bun.sleep(2_500);
    const second = await page.locator("canvas").screenshot();
    expect(Buffer.compare(first, second)).not.toBe(0);
    expect(await page.locator("#counters").textContent()).toContain("pings/s");
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}

test("`bun run demo` starts everything from a clean state, serves the API and the live map, and Ctrl-C leaves nothing listening", async () => {
  const ports = {
    GATEWAY_PORT: await freePort(),
    UPSTREAM_PORT: await freePort(),
    INGEST_PORT: await freePort(),
    INGEST_HTTP_PORT: await freePort(),
    TRACKING_PORT: await freePort(),
  };
  const env = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)]));
  // The demo keeps its secret here; `./edge token` must find it with nothing exported.
  const secretFile = join(mkdtempSync(join(tmpdir(), "demo-secret-")), "dev-jwt-secret");
  const demo = Bun.spawn([process.execPath, join(import.meta.dir, "main.ts")], {
    env: {
      ...process.env,
      ...env,
      DEMO_RIDERS: "30",
      LOG_LEVEL: "warn",
      REDIS_URL: "",
      JWT_SECRET: "",
      DEV_JWT_SECRET_FILE: secretFile,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = demo.stdout.getReader();
  let printed = "";
  const deadline = Date.now() + 30_000;
  while (!printed.includes("Follow the first one")) {
    if (Date.now() > deadline) throw new Error(`demo did not start:\n${printed}`);
    const { value, done } = await reader.read();
    if (done)
      throw new Error(`demo exited:\n${printed}\n${await new Response(demo.stderr).text()}`);
    printed += new TextDecoder().decode(value);
  }
  const status = /curl -s -H 'authorization: Bearer ([^']+)' (http:\/\/\S+\/status)/.exec(printed);
  expect(status).not.toBeNull();
  const response = await fetch(status?.[2] ?? "", {
    headers: { authorization: `Bearer ${status?.[1]}` },
  });
  expect(response.status).toBe(200);
  expect(((await response.json()) as { status: string }).status).toMatch(
    /^(CONFIRMED|ASSIGNED|READY|PICKED_UP|DELIVERED)$/,
  );

  // A newcomer's token, minted after the demo started, works against it.
  const minted = Bun.spawnSync(
    [
      process.execPath,
      join(import.meta.dir, "..", "core", "auth", "token-cli.ts"),
      "--role",
      "ops",
      "--sub",
      "newcomer",
    ],
    { env: { PATH: process.env.PATH, DEV_JWT_SECRET_FILE: secretFile } },
  );
  expect(minted.exitCode).toBe(0);
  const asNewcomer = await fetch(`http://127.0.0.1:${ports.GATEWAY_PORT}/v1/ops/live?city=london`, {
    headers: { authorization: `Bearer ${minted.stdout.toString().trim()}` },
  });
  expect(asNewcomer.status).toBe(200);
  expect(printed).toContain("./edge token -- --role");

  const mapLink = /Live map: (http:\/\/\S+)/.exec(printed)?.[1];
  expect(mapLink).toStartWith(`http://127.0.0.1:${ports.GATEWAY_PORT}/#token=`);
  await checkLiveMap(mapLink ?? "");

  demo.kill("SIGINT");
  expect(await demo.exited).toBe(0);
  const redisPort = Number(/Redis\s+redis:\/\/127\.0\.0\.1:(\d+)/.exec(printed)?.[1]);
  expect(redisPort).toBeGreaterThan(0);
  const trackingPorts = [0, 1, 2].map((n) => ports.TRACKING_PORT + n);
  for (const port of [...Object.values(ports), ...trackingPorts, redisPort])
    expect(await portIsClosed(port)).toBe(true);
}, 120_000);
