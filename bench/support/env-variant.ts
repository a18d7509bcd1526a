/**
 * A set of environment variables an A/B bench starts a server with (the
 * collector's settings, say: JavaScriptCore reads its BUN_JSC_* options only
 * at start), and the label its runs are reported under.
 */
export interface EnvVariant {
  readonly label: string;
  readonly env: Readonly<Record<string, string>>;
}

const LABEL = /^([^\s=:]+):\s*(.*)$/s;

/**
 * Reads one `--variant` of the A/B benches (status-tail.ts, gc-settings-ab.ts):
 * `[label:] NAME=value NAME=value ...`, pairs separated by spaces as on a
 * shell's command line before a command; `as-is` for none (the runtime's own
 * settings). Without a label, the text of the pairs is the label.
 */
export function parseEnvVariant(spec: string): EnvVariant {
  const labelled = LABEL.exec(spec.trim());
  const pairsText = (labelled ? (labelled[2] ?? "") : spec).trim();
  const label = labelled?.[1] ?? pairsText;
  if (pairsText === "as-is") return { label, env: {} };
  const pairs = pairsText.split(/\s+/).filter(Boolean);
  if (pairs.length === 0) throw new Error(`--variant '${spec}': no NAME=value pairs (or as-is)`);
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--variant '${spec}': ${pair} is not NAME=value`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { label, env };
}
