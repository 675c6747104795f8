import { option, parseArgs, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { lenientSourceDateEpoch, readEnvSettings } from "../env.ts";

const options = [
  { name: "kernel", value: true, required: true, description: "the kernel: a bzImage (vmlinuz), an ELF vmlinux or an arm64 Image" },
  { name: "initrd", value: true, description: "its initrd (bundled as initrd.img)" },
  { name: "modules", value: true, description: "its modules: lib/modules/<version> (bundled as modules/<version>/)" },
  { name: "level", value: true, description: "zstd level, 1-22 (default 19)" },
  { name: "out", value: true, required: true, description: "bundle to write (.tar.zst); replaced atomically" },
  { name: "json", value: false, description: "print {path, sha256, size, version, arch} as JSON" },
];

export const makeKernelBundleCommand: Command = {
  path: ["internal", "make-kernel-bundle"],
  summary: "build a kernel bundle (.tar.zst: vmlinuz or vmlinux, initrd.img, modules/<version>/) for a kernel catalog",
  usage: "banger internal make-kernel-bundle --kernel FILE [--initrd FILE] [--modules DIR] [--level L] --out <path.tar.zst> [--json]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const levelText = option(args, "level");
    const level = levelText === undefined ? undefined : Number(levelText);
    if (level !== undefined && (!Number.isInteger(level) || level < 1 || level > 22)) throw new UsageError(`--level "${levelText}" is not a zstd level (1-22)`);
    const settings = readEnvSettings(process.env);
    const { makeKernelBundle } = await import("../../daemon/make-kernel-bundle.ts");
    const r = makeKernelBundle({
      kernel: option(args, "kernel")!,
      initrd: option(args, "initrd"),
      modules: option(args, "modules"),
      out: option(args, "out")!,
      level,
      timestamp: lenientSourceDateEpoch(settings.sourceDateEpoch),
      skipped: (member, target) => console.error(`left out ${member} -> ${target}: it points outside the modules tree`),
    });
    if (args.flags.has("json")) console.log(JSON.stringify({ path: r.path, sha256: r.sha256, size: r.bytes, version: r.version, arch: r.arch }));
    else console.log(`${r.path}\nkernel ${r.version} (${r.arch})\nsha256 ${r.sha256}\nsize ${r.bytes}`);
    return 0;
  },
};
