import type { LiveMapChurnResult } from "./run-live-map-churn";

/** The "Live map socket churn" section of bench/RESULTS.md. */
export function liveMapReport(
  result: LiveMapChurnResult,
  command: string,
  machine: string,
): string {
  const changes = result.ordersStarted + result.ordersEnded;
  return [
    `\`${command}\` · ${machine} · ${new Date().toISOString().slice(0, 10)}`,
    "",
    `One live map tab (${result.viewport.width}×${result.viewport.height}, Debian Chromium) on the demo city with ${result.riders} riders, for ${result.seconds} s, counted once the city had 12 orders on the road (more than the 8 the page follows, so it has to choose) and the page had drawn some. The page should open a socket only when a followed order ends and another takes its place (or a node moves it), so opens are compared with the orders that started or ended in the same window (seen by polling \`GET /v1/ops/live\` each second).`,
    "",
    "| WebSocket opens | closes | distinct orders opened | orders started | orders ended | opens per started-or-ended order |",
    "| --- | --- | --- | --- | --- | --- |",
    `| ${result.opens} | ${result.closes} | ${result.distinctOrders} | ${result.ordersStarted} | ${result.ordersEnded} | ${changes > 0 ? (result.opens / changes).toFixed(2) : "–"} |`,
  ].join("\n");
}
