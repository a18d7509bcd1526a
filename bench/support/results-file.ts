import { existsSync, readFileSync, writeFileSync } from "node:fs";

/**
 * Replaces one `## <title>` section of bench/RESULTS.md (or appends it),
 * leaving the other parts' sections as they were.
 */
export function writeResultsSection(path: string, title: string, body: string): void {
  const header =
    "# Benchmark results\n\nWritten by `bun run bench`; each section by its own part.\n";
  const current = existsSync(path) ? readFileSync(path, "utf8") : header;
  const heading = `## ${title}\n`;
  const section = `${heading}\n${body.trim()}\n`;
  const start = current.indexOf(heading);
  if (start < 0) {
    writeFileSync(path, `${current.trimEnd()}\n\n${section}`);
    return;
  }
  const next = current.indexOf("\n## ", start + heading.length);
  const rest = next < 0 ? "" : current.slice(next + 1);
  writeFileSync(path, `${current.slice(0, start)}${section}${rest ? `\n${rest}` : ""}`);
}
