// Names each failed test from bun's JUnit report, with its file: bun's own
// "(fail)" line has no path, and a file-level beforeAll/afterAll that throws
// is reported as "(unnamed)", which says nothing about where to look.
//   bun scripts/test-failures.ts <junit report>
// Prints nothing when no test failed.

export type TestFailure = { file: string; test: string; detail: string };

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x?[0-9a-fA-F]+|[a-z]+);/g, (whole, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    return ENTITIES[entity] ?? whole;
  });
}

function attribute(tag: string, name: string): string {
  const value = new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
  return value === undefined ? "" : unescapeXml(value);
}

/**
 * Every testcase of the report that holds a <failure>, in report order, named
 * by its describe blocks (the nested <testsuite>s) outermost first.
 */
export function testFailures(report: string): TestFailure[] {
  const failures: TestFailure[] = [];
  const suites: string[] = [];
  // A self-closed <testcase/> passed or was skipped; only an open one can hold a <failure>.
  const tags =
    /<testsuite\b[^>]*?(\/?)>|<\/testsuite>|<testcase\b[^>]*\/>|(<testcase\b[^>]*>)([\s\S]*?)<\/testcase>/g;
  for (const match of report.matchAll(tags)) {
    const [whole, suiteClosed, caseTag, caseBody] = match;
    if (whole === "</testsuite>") suites.pop();
    else if (whole.startsWith("<testsuite")) {
      if (!suiteClosed) suites.push(attribute(whole, "name"));
    } else if (caseTag) {
      const failure = /<failure\b[^>]*>([\s\S]*?)<\/failure>/.exec(caseBody ?? "");
      if (!failure) continue;
      const name = attribute(caseTag, "name");
      failures.push({
        file: attribute(caseTag, "file"),
        test:
          name === "(unnamed)"
            ? "(unnamed: a file-level beforeAll/afterAll hook)"
            : [...suites.slice(1), name].join(" > "),
        detail: unescapeXml(failure[1] ?? "").trim(),
      });
    }
  }
  return failures;
}

const MAX_DETAIL_LINES = 12;

export function describeFailures(failures: TestFailure[]): string {
  return failures
    .map(({ file, test, detail }) => {
      const lines = detail.split("\n");
      const shown = lines.slice(0, MAX_DETAIL_LINES).map((line) => (line ? `    ${line}` : ""));
      if (lines.length > MAX_DETAIL_LINES)
        shown.push(`    ... ${lines.length - MAX_DETAIL_LINES} more lines`);
      return [`failed: ${file} > ${test}`, ...shown].join("\n");
    })
    .join("\n");
}

if (import.meta.main) {
  const path = process.argv[2];
  if (!path) {
    console.error("usage: bun scripts/test-failures.ts <junit report>");
    process.exit(2);
  }
  const described = describeFailures(testFailures(await Bun.file(path).text()));
  if (described) console.log(described);
}
