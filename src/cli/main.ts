#!/usr/bin/env bun
// banger command line: one entry point, subcommands, --help everywhere.
import { UsageError, formatOptions } from "./args.ts";
import type { Command } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";
import { oneLine } from "../tree/names.ts";

function helpFor(prefix: string[]): string {
  const matching = COMMANDS.filter((c) => prefix.every((w, i) => c.path[i] === w));
  const lines = [`usage: banger ${prefix.length ? prefix.join(" ") + " " : ""}<command> [options]`, "", "commands:"];
  const width = Math.max(...matching.map((c) => c.path.join(" ").length));
  for (const c of matching) lines.push(`  ${c.path.join(" ").padEnd(width)}  ${c.summary}`);
  lines.push("", "Run `banger <command> --help` for a command's options.");
  return lines.join("\n");
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, "", c.summary, "", "options:", formatOptions(c.options), "  --help  show this help"].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  // `banger --version` and `-V`, as most command lines take them: the version command.
  if (argv[0] === "--version" || argv[0] === "-V") argv = ["version", ...argv.slice(1)];
  let best: Command | undefined;
  for (const c of COMMANDS) {
    if (c.path.every((w, i) => argv[i] === w) && (!best || c.path.length > best.path.length)) best = c;
  }
  if (!best) {
    const words = argv.filter((a) => !a.startsWith("-"));
    const prefixLen = [...Array(words.length + 1).keys()]
      .reverse()
      .find((n) => COMMANDS.some((c) => words.slice(0, n).every((w, i) => c.path[i] === w)))!;
    const prefix = words.slice(0, prefixLen);
    const wantsHelp = argv.length === 0 || argv.includes("--help") || argv.includes("-h") || argv[0] === "help";
    if (wantsHelp || (prefixLen === words.length && prefixLen > 0)) {
      console.log(helpFor(prefix));
      return wantsHelp ? 0 : 2;
    }
    console.error(`banger: unknown command "${oneLine(words.slice(0, prefixLen + 1).join(" "), 200)}"\n\n${helpFor(prefix)}`);
    return 2;
  }
  const rest = argv.slice(best.path.length);
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(commandHelp(best));
    return 0;
  }
  try {
    return await best.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`banger ${best.path.join(" ")}: ${oneLine(err.message)}\n\n${commandHelp(best)}`);
      return 2;
    }
    // One bounded line whatever the error carries (names from a hostile archive, a huge path):
    // displayName already escapes names; this is the net for everything else.
    const message = oneLine(err instanceof Error ? err.message : String(err));
    // A CLI and a daemon of different releases: about banger as a whole, not this command.
    const who = err instanceof Error && err.name === "DaemonVersionError" ? "banger" : `banger ${best.path.join(" ")}`;
    console.error(`${who}: ${message}`);
    if (process.env.BANGER_DEBUG && err instanceof Error) console.error(err.stack);
    return 1;
  }
}

// Run directly (`bun src/cli/main.ts`); `bun run banger` goes through launch.ts. No top-level
// await: launch.ts bundles this module as CommonJS, which cannot have one.
if (import.meta.main) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
