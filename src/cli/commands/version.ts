// banger version (also `banger --version`, `banger -V`): this CLI's release, the daemon protocol
// it speaks and the Bun it runs on. Asks no daemon: `daemon status` says which one runs.
import { parseArgs, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { OWN_VERSION } from "../../daemon/protocol.ts";

const options = [{ name: "json", value: false, description: "print {version, protocol, bun} on stdout" }];

export const versionCommand: Command = {
  path: ["version"],
  summary: "print banger's version, its daemon protocol and the Bun it runs on (also --version, -V)",
  usage: "banger version [--json]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const info = { version: OWN_VERSION.version, protocol: OWN_VERSION.protocol, bun: Bun.version };
    console.log(args.flags.has("json") ? JSON.stringify(info) : `banger ${info.version} (daemon protocol ${info.protocol}, Bun ${info.bun})`);
    return 0;
  },
};
