// banger image catalog: the images `image pull <name>` installs as prebuilt bundles (the
// embedded catalog, or the file in BANGER_IMAGE_CATALOG).
import { parseArgs, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { table } from "../format.ts";

const options = [{ name: "json", value: false, description: "print the entries as a JSON array" }];

export const imageCatalogCommand: Command = {
  path: ["image", "catalog"],
  summary: "list the catalog's images (prebuilt bundles `image pull <name>` installs)",
  usage: "banger image catalog [--json]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const { loadCatalog } = await import("../../daemon/catalog.ts");
    const entries = loadCatalog(process.env.BANGER_IMAGE_CATALOG || undefined);
    if (args.flags.has("json")) {
      console.log(JSON.stringify(entries));
      return 0;
    }
    if (entries.length === 0) {
      console.log("the image catalog is empty (BANGER_IMAGE_CATALOG=<file> points at another)");
      return 0;
    }
    const rows = [["NAME", "DISTRO", "ARCH", "SIZE", "KERNEL", "DESCRIPTION"], ...entries.map((e) => [e.name, e.distro, e.arch, `${(e.size / 1048576).toFixed(1)} MiB`, e.kernel_ref ?? "-", e.description ?? ""])];
    console.log(table(rows));
    return 0;
  },
};
