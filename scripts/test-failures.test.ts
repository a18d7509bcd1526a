import { afterAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeFailures, testFailures } from "./test-failures";

const dir = await mkdtemp(join(tmpdir(), "test-failures-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs bun test on the given files in a scratch folder and returns bun's own JUnit report. */
async function junitReportOf(files: Record<string, string>): Promise<string> {
  for (const [name, source] of Object.entries(files)) await Bun.write(join(dir, name), source);
  const run = Bun.spawn(
    [process.execPath, "test", "--reporter=junit", "--reporter-outfile=report.xml"],
    {
      cwd: dir,
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  await run.exited;
  return Bun.file(join(dir, "report.xml")).text();
}

test("a failing file-level hook and a failing nested test are named with their files and errors", async () => {
  const report = await junitReportOf({
    "cleanup.test.ts": `import { afterAll, expect, test } from "bun:test";
afterAll(() => { throw new Error("could not stop <redis> & co"); });
test("passes", () => expect(1).toBe(1));`,
    "nested.test.ts": `import { describe, expect, test } from "bun:test";
describe("orders", () => { describe("cancel", () => { test("is refused", () => expect("a").toBe("b")); }); });
test("also passes", () => expect(2).toBe(2));`,
  });

  const failures = testFailures(report).sort((a, b) => a.file.localeCompare(b.file));
  expect(failures.map(({ file, test }) => ({ file, test }))).toEqual([
    { file: "cleanup.test.ts", test: "(unnamed: a file-level beforeAll/afterAll hook)" },
    { file: "nested.test.ts", test: "orders > cancel > is refused" },
  ]);
  expect(failures[0]?.detail).toContain("could not stop <redis> & co");
  expect(failures[0]?.detail).toContain("cleanup.test.ts:2");
  expect(failures[1]?.detail).toContain('Expected: "b"');

  const printed = describeFailures(failures);
  expect(printed).toContain(
    "failed: cleanup.test.ts > (unnamed: a file-level beforeAll/afterAll hook)\n    Error:",
  );
  expect(printed).toContain("failed: nested.test.ts > orders > cancel > is refused");
});

test("a report with no failure lists nothing", async () => {
  const report = await junitReportOf({
    "cleanup.test.ts": `import { test } from "bun:test"; test("passes", () => {});`,
    "nested.test.ts": `import { test } from "bun:test"; test("passes too", () => {});`,
  });
  expect(report).toContain("<testcase");
  expect(testFailures(report)).toEqual([]);
  expect(describeFailures([])).toBe("");
});
