// The code an app developer copies first: every TypeScript example in
// clients/README.md must type-check against the client libraries as built
// (an option renamed, an event's payload changed, a moved module fails here).
import { expect, test } from "bun:test";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { ROOT, readRepoFile } from "./repo-docs";

// What the examples leave to the app: its ids, token, screens and GPS.
const APP_SIDE = `
declare const orderId: string;
declare const token: string;
declare const myApp: { freshToken(): Promise<string> };
declare function draw(event: object): void;
declare function showWhy(reason: string): void;
declare function askTheRider(offer: object): void;
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
