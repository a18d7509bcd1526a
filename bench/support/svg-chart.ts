/**
 * A small SVG chart writer for the bench's figures: line charts (latency
 * against offered load, with a log scale where values span decades) and
 * grouped bar charts (throughput of the edge against its baselines). The
 * output is a standalone SVG file, readable on GitHub and in any browser,
 * with no script, font or stylesheet from elsewhere.
 */

export interface Point {
  x: number;
  y: number;
  /** Shown on hover (SVG <title>). */
  note?: string;
}

export interface Series {
  name: string;
  points: Point[];
  /** Drawn dashed: a baseline or a goal rather than a measurement of the edge. */
  dashed?: boolean;
}

export interface Axis {
  label: string;
  log?: boolean;
}

export interface LineChart {
  kind: "line";
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
}

export interface BarChart {
  kind: "bar";
  title: string;
  y: Axis;
  /** One group per category (e.g. a run); one bar per series within it. */
  groups: { label: string; bars: { name: string; value: number }[] }[];
}

export type Chart = LineChart | BarChart;

const WIDTH = 760;
const HEIGHT = 420;
const PLOT = { left: 72, right: 24, top: 64, bottom: 64 };
// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

const xmlText = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const fixed = (n: number) => Number(n.toFixed(1));

/** 12_500 → "12.5k", 0.25 → "0.25", 3_000_000 → "3M". */
export function formatNumber(n: number): string {
  const abs = Math.abs(n);
  const trim = (v: number) => String(Number(v.toPrecision(3)));
  if (abs >= 1e6) return `${trim(n / 1e6)}M`;
  if (abs >= 1e4) return `${trim(n / 1e3)}k`;
  return trim(n);
}

/** Tick values for [min, max]: steps of 1, 2 or 5 × 10^k on a linear axis, powers of ten (and 2, 5 between) on a log one. */
export function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e += 1)
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    return out;
  }
  const raw = (max - min) / 5 || 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    out.push(fixed(v * 1e6) / 1e6);
  return out;
}

/** The axis range: from 0 (linear) or the decade below the least value (log) to a round value above the most. */
function domain(values: number[], log: boolean): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (finite.length === 0) return log ? [1, 10] : [0, 1];
  const most = Math.max(...finite);
  if (log) {
    const least = Math.min(...finite);
    return [10 ** Math.floor(Math.log10(least)), 10 ** Math.ceil(Math.log10(most * 1.0001))];
  }
  const [first = 0, second = 1] = ticks(0, most, false);
  const step = second - first;
  return [0, Math.ceil(most / step - 1e-9) * step];
}

function scale(range: [number, number], log: boolean, from: number, to: number) {
  const [a, b] = log ? [Math.log10(range[0]), Math.log10(range[1])] : range;
  return (v: number) => {
    const t = ((log ? Math.log10(v) : v) - a) / (b - a || 1);
    return fixed(from + t * (to - from));
  };
}

function frame(title: string, body: string[], legend: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12" fill="#222">`,
    `<title>${xmlText(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${PLOT.left}" y="24" font-size="15" font-weight="600">${xmlText(title)}</text>`,
    ...legend,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

/** Legend entries in one row under the title. */
function legend(entries: { name: string; colour: string; dashed?: boolean }[]): string[] {
  let x = PLOT.left;
  return entries.map(({ name, colour, dashed }) => {
    const entry = `<g><line x1="${x}" y1="42" x2="${x + 18}" y2="42" stroke="${colour}" stroke-width="3"${dashed ? ' stroke-dasharray="5 3"' : ""}/><text x="${x + 24}" y="46">${xmlText(name)}</text></g>`;
    x += 24 + name.length * 6.6 + 18;
    return entry;
  });
}

function axes(
  xTicks: { at: number; label: string }[],
  yTicks: { at: number; label: string }[],
  x: Axis,
  y: Axis,
): string[] {
  const [left, right, top, bottom] = [
    PLOT.left,
    WIDTH - PLOT.right,
    PLOT.top,
    HEIGHT - PLOT.bottom,
  ];
  return [
    ...yTicks.map(
      (t) =>
        `<line x1="${left}" y1="${t.at}" x2="${right}" y2="${t.at}" stroke="#e3e3e3"/><text x="${left - 8}" y="${t.at + 4}" text-anchor="end">${xmlText(t.label)}</text>`,
    ),
    ...xTicks.map(
      (t) =>
        `<line x1="${t.at}" y1="${bottom}" x2="${t.at}" y2="${bottom + 5}" stroke="#888"/><text x="${t.at}" y="${bottom + 19}" text-anchor="middle">${xmlText(t.label)}</text>`,
    ),
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#888"/>`,
    `<text x="${(left + right) / 2}" y="${HEIGHT - 18}" text-anchor="middle">${xmlText(x.label)}</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${xmlText(y.label)}</text>`,
  ];
}

function lineChart(chart: LineChart): string {
  const usable = chart.series.map((s) => ({
    ...s,
    points: s.points.filter(
      (p) =>
        Number.isFinite(p.x) &&
        Number.isFinite(p.y) &&
        (!chart.y.log || p.y > 0) &&
        (!chart.x.log || p.x > 0),
    ),
  }));
  const all = usable.flatMap((s) => s.points);
  const xRange = domain(
    all.map((p) => p.x),
    chart.x.log ?? false,
  );
  const yRange = domain(
    all.map((p) => p.y),
    chart.y.log ?? false,
  );
  const sx = scale(xRange, chart.x.log ?? false, PLOT.left, WIDTH - PLOT.right);
  const sy = scale(yRange, chart.y.log ?? false, HEIGHT - PLOT.bottom, PLOT.top);
  const body = axes(
    ticks(...xRange, chart.x.log ?? false).map((v) => ({ at: sx(v), label: formatNumber(v) })),
    ticks(...yRange, chart.y.log ?? false).map((v) => ({ at: sy(v), label: formatNumber(v) })),
    chart.x,
    chart.y,
  );
  usable.forEach((series, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const sorted = [...series.points].sort((a, b) => a.x - b.x);
    if (sorted.length > 1)
      body.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="2"${series.dashed ? ' stroke-dasharray="5 3"' : ""} points="${sorted.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ")}"/>`,
      );
    for (const p of sorted) {
      const note = `${series.name}: ${formatNumber(p.y)} at ${formatNumber(p.x)}${p.note ? ` (${p.note})` : ""}`;
      // A baseline's or goal's points are rings, so they stay visible where they meet a measurement.
      const marker = series.dashed
        ? `r="5" fill="#fff" stroke="${colour}" stroke-width="2"`
        : `r="3.5" fill="${colour}"`;
      body.push(
        `<circle cx="${sx(p.x)}" cy="${sy(p.y)}" ${marker}><title>${xmlText(note)}</title></circle>`,
      );
    }
  });
  return frame(
    chart.title,
    body,
    legend(
      usable.map((s, i) => ({
        name: s.name,
        colour: COLOURS[i % COLOURS.length] ?? "#000",
        dashed: s.dashed,
      })),
    ),
  );
}

function barChart(chart: BarChart): string {
  const names = [...new Set(chart.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const values = chart.groups.flatMap((g) => g.bars.map((b) => b.value));
  const yRange = domain(values, chart.y.log ?? false);
  const sy = scale(yRange, chart.y.log ?? false, HEIGHT - PLOT.bottom, PLOT.top);
  const slot = (WIDTH - PLOT.left - PLOT.right) / Math.max(1, chart.groups.length);
  const barWidth = Math.min(56, (slot * 0.8) / Math.max(1, names.length));
  const body = axes(
    chart.groups.map((g, i) => ({ at: fixed(PLOT.left + slot * (i + 0.5)), label: g.label })),
    ticks(...yRange, chart.y.log ?? false).map((v) => ({ at: sy(v), label: formatNumber(v) })),
    { label: "" },
    chart.y,
  );
  chart.groups.forEach((group, g) => {
    const start = PLOT.left + slot * (g + 0.5) - (barWidth * names.length) / 2;
    for (const bar of group.bars) {
      if (!Number.isFinite(bar.value)) continue;
      const i = names.indexOf(bar.name);
      const x = fixed(start + i * barWidth);
      const y = sy(Math.max(bar.value, chart.y.log ? yRange[0] : 0));
      const base = HEIGHT - PLOT.bottom;
      body.push(
        `<rect x="${x + 2}" y="${y}" width="${fixed(barWidth - 4)}" height="${fixed(base - y)}" fill="${COLOURS[i % COLOURS.length]}"><title>${xmlText(`${bar.name}: ${formatNumber(bar.value)}`)}</title></rect>`,
        `<text x="${fixed(x + barWidth / 2)}" y="${y - 5}" text-anchor="middle" font-size="11">${xmlText(formatNumber(bar.value))}</text>`,
      );
    }
  });
  return frame(
    chart.title,
    body,
    legend(names.map((name, i) => ({ name, colour: COLOURS[i % COLOURS.length] ?? "#000" }))),
  );
}

/** The chart as a standalone SVG document. */
export function renderChart(chart: Chart): string {
  return chart.kind === "line" ? lineChart(chart) : barChart(chart);
}
