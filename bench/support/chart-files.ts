import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Chart, renderChart } from "./svg-chart";

/** A chart of one bench part and the file it goes to (`<name>.svg` in `charts/` beside the results file). */
export type NamedChart = Chart & { name: string };

/**
 * Writes each chart as an SVG file in `charts/` beside the results file and
 * returns the Markdown that shows them, for the end of the part's section.
 */
export function writeCharts(resultsFile: string, charts: readonly NamedChart[]): string {
  if (charts.length === 0) return "";
  const folder = join(dirname(resultsFile), "charts");
  mkdirSync(folder, { recursive: true });
  const links = charts.map((chart) => {
    if (!/^[a-z0-9-]+$/.test(chart.name))
      throw new Error(`chart name ${chart.name}: use a-z 0-9 -`);
    writeFileSync(join(folder, `${chart.name}.svg`), renderChart(chart));
    return `![${chart.title}](charts/${chart.name}.svg)`;
  });
  return `\n${links.join("\n\n")}\n`;
}
