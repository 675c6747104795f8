import { option, parseArgs, parseSize, parseZstdLevel, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { lenientSourceDateEpoch, readEnvSettings } from "../env.ts";

const options = [
  { name: "rootfs-tar", value: true, required: true, description: "rootfs tar to turn into a bundle; - reads standard input" },
  { name: "name", value: true, required: true, description: "image name the bundle installs as (a-z, 0-9, . _ -)" },
  { name: "distro", value: true, required: true, description: "distribution, e.g. debian" },
  { name: "arch", value: true, required: true, description: "architecture, e.g. amd64 or arm64" },
  { name: "kernel-ref", value: true, description: "name of the kernel the image boots with" },
  { name: "description", value: true, description: "one line for catalogs" },
  { name: "size", value: true, description: "rootfs size (512M, 2G, ...); default max(1G, used x 1.25)" },
  { name: "level", value: true, description: "zstd level, 1-22 (default 19)" },
  { name: "out", value: true, required: true, description: "bundle to write (.tar.zst); replaced atomically" },
  { name: "json", value: false, description: "print {path, sha256, size, manifest} as JSON" },
];

export const makeBundleCommand: Command = {
  path: ["internal", "make-bundle"],
  summary: "build an image bundle (.tar.zst: ext4 rootfs with banger's guest files, work seed, manifest) from a rootfs tar",
  usage: "banger internal make-bundle --rootfs-tar <file|-> --name N --distro D --arch A [--kernel-ref K] [--description T] [--size S] --out <path.tar.zst>",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const sizeText = option(args, "size");
    const level = parseZstdLevel(option(args, "level"));
    const name = option(args, "name")!;
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) throw new UsageError(`--name "${name}": use a-z, 0-9, ".", "_" and "-" (at most 64, starting with a letter or digit)`);
    const settings = readEnvSettings(process.env);
    const { makeBundle } = await import("../../daemon/make-bundle.ts");
    const r = await makeBundle({
      rootfsTar: option(args, "rootfs-tar")!,
      name,
      distro: option(args, "distro")!,
      arch: option(args, "arch")!,
      kernelRef: option(args, "kernel-ref"),
      description: option(args, "description"),
      sizeBytes: sizeText === undefined ? undefined : parseSize(sizeText),
      level,
      out: option(args, "out")!,
      timestamp: lenientSourceDateEpoch(settings.sourceDateEpoch),
      io: settings.io,
    });
    if (args.flags.has("json")) console.log(JSON.stringify({ path: r.path, sha256: r.sha256, size: r.bytes, manifest: r.manifest }));
    else console.log(`${r.path}\nsha256 ${r.sha256}\nsize ${r.bytes}`);
    return 0;
  },
};
