// banger doctor: is this host ready to build and boot images? The checks live in src/doctor and
// ask a HostProbe; here the environment becomes their inputs: the XDG dirs (bangerPaths, as
// createServices takes them), PATH for the probe's `which`, NO_COLOR through src/cli/env.ts.
import { parseArgs, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { readEnvSettings } from "../env.ts";

const options = [{ name: "json", value: false, description: "print an array of {id, status, summary, fix?} on stdout instead of text" }];

export const doctorCommand: Command = {
  path: ["doctor"],
  summary: "check this host for what building and booting images needs, with a fix for each problem",
  usage: "banger doctor [--json]\n  exit status: 0 when no check fails (warnings allowed), 1 otherwise",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    // Loaded here, not at the top: `banger` starts every command, and each pays only for its own modules.
    const [{ DOCTOR_CHECKS, createHostProbe, exitCodeFor, formatReports, runChecks }, { bangerPaths }] = await Promise.all([
      import("../../doctor/index.ts"),
      import("../../daemon/paths.ts"),
    ]);
    const reports = await runChecks(DOCTOR_CHECKS, {
      probe: createHostProbe({ searchPath: process.env.PATH }),
      paths: bangerPaths(process.env),
      arch: process.arch,
    });
    if (args.flags.has("json")) {
      console.log(JSON.stringify(reports));
    } else {
      const color = process.stdout.isTTY === true && !readEnvSettings(process.env).noColor;
      console.log(formatReports(reports, { color }));
    }
    return exitCodeFor(reports);
  },
};
