/**
 * One way for every command of the project to read its flags: `--help`
 * prints the command's own usage, and a flag it does not know or a value it
 * cannot use ends it with one line naming the flag (exit 2), never a stack
 * trace.
 */
import { parseArgs } from "node:util";

export interface FlagSpec {
  /** Omitted: the flag takes a value. */
  type?: "string" | "boolean";
  default?: string;
  /** One line for `--help`. */
  help: string;
}

export interface CommandSpec<F extends Record<string, FlagSpec>> {
  /** How a person runs it, e.g. `./edge token -- --role rider --sub r1 --city london`. */
  usage: string;
  /** What it does, a few lines. */
  summary: string;
  flags: F;
  /** Printed after the flags: environment variables, files it reads. */
  notes?: string;
}

type FlagValues<F extends Record<string, FlagSpec>> = {
  [K in keyof F]: F[K]["type"] extends "boolean"
    ? boolean | undefined
    : F[K]["default"] extends string
      ? string
      : string | undefined;
};

/** The `--help` text of a command. */
export function helpText(spec: CommandSpec<Record<string, FlagSpec>>): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = flag.type === "boolean" ? `--${name}` : `--${name} <value>`;
    const fallback = flag.default === undefined ? "" : ` (default ${flag.default})`;
    return `  ${left.padEnd(24)} ${flag.help}${fallback}`;
  });
  rows.push(`  ${"--help".padEnd(24)} this text`);
  return [`usage: ${spec.usage}`, "", spec.summary, "", "flags:", ...rows]
    .concat(spec.notes ? ["", spec.notes] : [])
    .join("\n");
}

/**
 * Parses `args` against the spec. `--help` prints the usage and exits 0; an
 * unknown flag, a missing value or a stray argument exits 2 with the reason.
 */
export function parseCommandLine<F extends Record<string, FlagSpec>>(
  spec: CommandSpec<F>,
  args: readonly string[],
): FlagValues<F> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(helpText(spec));
    process.exit(0);
  }
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([name, flag]) => [
      name,
      {
        type: flag.type ?? "string",
        ...(flag.default === undefined ? {} : { default: flag.default }),
      },
    ]),
  ) as Record<string, { type: "string" | "boolean"; default?: string }>;
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false })
      .values as FlagValues<F>;
  } catch (error) {
    // node's messages go on with advice about `--`; the first sentence is the reason.
    const reason = (error instanceof Error ? error.message : String(error)).split(". ")[0] ?? "";
    return exitWithUsage(spec, reason);
  }
}

/** Ends the command with the reason and a pointer to `--help` (exit 2). */
export function exitWithUsage(spec: CommandSpec<Record<string, FlagSpec>>, reason: string): never {
  console.error(`error: ${reason}\nusage: ${spec.usage}   (--help for every flag)`);
  process.exit(2);
}

/** A whole number within bounds, or the end of the command naming the flag. */
export function intFlag(
  spec: CommandSpec<Record<string, FlagSpec>>,
  name: string,
  raw: string,
  bounds: { min?: number; max?: number } = {},
): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  return exitWithUsage(
    spec,
    `--${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`,
  );
}
