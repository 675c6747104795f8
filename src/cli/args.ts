// Minimal, strict option parsing shared by every subcommand: --name value, --name=value,
// boolean flags, and positionals. Unknown options are errors, never ignored.

export class UsageError extends Error {
  override name = "UsageError";
}

export interface OptionSpec {
  /** Option name without dashes. */
  name: string;
  /** true: takes a value. false: a flag. */
  value: boolean;
  description: string;
  required?: boolean;
  repeatable?: boolean;
}

export interface ParsedArgs {
  options: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
  help: boolean;
}

export function parseArgs(argv: string[], specs: OptionSpec[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const parsed: ParsedArgs = { options: new Map(), flags: new Set(), positionals: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      parsed.help = true;
      continue;
    }
    if (arg === "--") {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = byName.get(name);
      if (!spec) throw new UsageError(`unknown option --${name}`);
      if (!spec.value) {
        if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
        parsed.flags.add(name);
        continue;
      }
      let value: string;
      if (eq >= 0) value = arg.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
        value = argv[++i]!;
      }
      const list = parsed.options.get(name) ?? [];
      if (list.length > 0 && !spec.repeatable) throw new UsageError(`option --${name} given more than once`);
      list.push(value);
      parsed.options.set(name, list);
      continue;
    }
    parsed.positionals.push(arg);
  }
  if (!parsed.help) {
    for (const spec of specs) {
      if (spec.required && !parsed.options.has(spec.name)) throw new UsageError(`missing required option --${spec.name}`);
    }
  }
  return parsed;
}

export function option(args: ParsedArgs, name: string): string | undefined {
  return args.options.get(name)?.[0];
}

export function formatOptions(specs: OptionSpec[]): string {
  const rows = specs.map((s) => [`--${s.name}${s.value ? " <value>" : ""}`, s.description + (s.required ? " (required)" : "")]);
  const width = Math.max(...rows.map((r) => r[0]!.length), 8);
  return rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`).join("\n");
}

/** Parses sizes like 4096, 512M, 1G, 1.5GiB, 10T into bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid size "${text}": expected a number with an optional K, M, G, T or P suffix`);
  const exp = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t" | "p"];
  const bytes = Math.round(Number(m[1]) * 1024 ** exp);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`invalid size "${text}"`);
  return bytes;
}

/** A --level option for zstd (1-22), or undefined when not given. */
export function parseZstdLevel(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const level = Number(text);
  if (!Number.isInteger(level) || level < 1 || level > 22) throw new UsageError(`--level "${text}" is not a zstd level (1-22)`);
  return level;
}

/** Parses durations like 90, 30s, 15m, 2h (plain numbers are seconds) into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration "${text}": expected a number with an optional ms, s, m or h suffix`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s").toLowerCase() as "ms" | "s" | "m" | "h"];
  const ms = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(ms)) throw new UsageError(`invalid duration "${text}"`);
  return ms;
}
