// banger image push <name|id> <ref>: the image as a bundle, stored in an OCI registry as an
// artifact; `banger image pull <ref>` on another machine installs it as it is.
import { option, parseArgs, parseZstdLevel, UsageError } from "../args.ts";
import type { Command } from "../command.ts";

const options = [
  { name: "level", value: true, description: "zstd level of the bundle, 1-22 (default 19)" },
  { name: "distro", value: true, description: "distribution recorded in the bundle's manifest" },
  { name: "json", value: false, description: "print {reference, manifestDigest, bundleDigest, bundleBytes} as JSON" },
];

export const imagePushCommand: Command = {
  path: ["image", "push"],
  summary: "push an image to an OCI registry as a bundle artifact (image pull of the reference installs it)",
  usage: "banger image push <name|id> <registry/repository[:tag]> [--level L] [--json]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length !== 2) throw new UsageError(args.positionals.length < 2 ? "missing <name|id> or <reference>" : `unexpected argument "${args.positionals[2]}"`);
    const [nameOrId, ref] = args.positionals as [string, string];
    const level = parseZstdLevel(option(args, "level"));
    const [{ createServices }, { pushImage }, { dockerConfigCredentials }] = await Promise.all([import("../../daemon/index.ts"), import("../../daemon/image-push.ts"), import("../../oci/index.ts")]);
    const services = createServices(process.env);
    try {
      const rec = services.images.show(nameOrId);
      const r = await pushImage(rec, ref, { level, distro: option(args, "distro"), credentials: dockerConfigCredentials({ env: process.env }) });
      if (args.flags.has("json")) console.log(JSON.stringify(r));
      else console.log(`pushed ${rec.name} to ${r.reference} (${r.manifestDigest}), bundle ${(r.bundleBytes / 1048576).toFixed(1)} MiB`);
      return 0;
    } finally {
      services.close();
    }
  },
};
