// `banger internal make-kernel-bundle`: a kernel, its initrd and its modules tree -> a kernel
// bundle (.tar.zst, src/bundle/kernel-write.ts) for a kernel catalog. The inputs are checked
// as `kernel register` checks them, so a bundle that is made is one `kernel pull` accepts.
import path from "node:path";
import { writeKernelBundle, type KernelBundleWritten } from "../bundle/kernel-write.ts";
import { findModulesVersionDir } from "../inject/kernel-modules.ts";
import { identifyKernel, kernelFileName, kernelVersion } from "../kernel/index.ts";

export interface MakeKernelBundleRequest {
  kernel: string;
  initrd?: string;
  /** lib/modules/<version>, or a directory holding lib/modules/<version> or <version>/. */
  modules?: string;
  out: string;
  /** zstd level (default 19). */
  level?: number;
  /** Every member's mtime (seconds), e.g. from SOURCE_DATE_EPOCH; default each file's own. */
  timestamp?: number;
  /** Told about each symlink left out (it points outside the modules tree). */
  skipped?: (member: string, target: string) => void;
}

export interface KernelBundleMade extends KernelBundleWritten {
  version: string;
  arch: string;
}

export function makeKernelBundle(req: MakeKernelBundleRequest): KernelBundleMade {
  const identity = identifyKernel(req.kernel);
  const modulesRoot = req.modules === undefined ? null : findModulesVersionDir(path.resolve(req.modules));
  const version = kernelVersion(identity, req.kernel, modulesRoot);
  const written = writeKernelBundle({
    kernel: req.kernel,
    kernelName: kernelFileName(identity.format),
    initrd: req.initrd,
    modules: modulesRoot ? { dir: modulesRoot, version } : undefined,
    out: req.out,
    level: req.level,
    workers: Math.max(1, navigator.hardwareConcurrency ?? 1),
    mtime: req.timestamp,
    skipped: req.skipped,
  });
  return { ...written, version, arch: identity.arch };
}
