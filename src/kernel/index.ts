// src/kernel: what a kernel file is (format, architecture, release), read from its own bytes.
export { identifyKernel, kernelFileName, kernelVersion, findBanner, parseBzImageHeader, looksLikeRelease, KernelFileError, type KernelFormat, type KernelIdentity } from "./identify.ts";
