// src/kernel/identify.ts: the release and architecture read from a kernel file's own bytes.
// Debian's cloud kernel is the real case (its bzImage header against its /lib/modules name);
// synthetic files cover what one installed kernel cannot (ELF, arm64, 32-bit, banners cut by a
// read, files that are no kernel).
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { identifyKernel, kernelVersion, KernelFileError } from "../../src/kernel/index.ts";
import { testWith } from "../helpers/env.ts";
import { CLOUD, CLOUD_ABSENT, fakeBzImage, fakeVmlinux } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-identify-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const file = (bytes: Uint8Array) => {
  const f = path.join(tmp, `k${n++}`);
  fs.writeFileSync(f, bytes);
  return f;
};

testWith({ absent: CLOUD_ABSENT }, "Debian's cloud bzImage: its header's version is the release its /lib/modules directory is named after", () => {
  const id = identifyKernel(CLOUD!.kernel);
  expect(id.format).toBe("bzImage");
  expect(id.arch).toBe("amd64");
  // What `uname -r` prints on that kernel, and what the package names /lib/modules/<version>.
  expect(id.version).toBe(path.basename(CLOUD!.modules));
  expect(id.version).toBe(CLOUD!.version);
  expect(id.versionString!.startsWith(`${CLOUD!.version} (`)).toBe(true);
  expect(id.versionString).toMatch(/#\d+ SMP/);
  expect(kernelVersion(id, CLOUD!.kernel, CLOUD!.modules)).toBe(CLOUD!.version);
});

testWith({ absent: CLOUD_ABSENT }, "the initrd next to it is refused as a kernel, naming the file", () => {
  expect(() => identifyKernel(CLOUD!.initrd)).toThrow(`${CLOUD!.initrd}: not a kernel image banger knows`);
});

test("bzImage: the version pointer is followed (+0x200); xloadflags tells 64-bit from 32-bit", () => {
  const v = "6.12.9-test (me@host) #1 SMP PREEMPT_DYNAMIC";
  expect(identifyKernel(file(fakeBzImage(v)))).toEqual({ format: "bzImage", arch: "amd64", version: "6.12.9-test", versionString: v });
  expect(identifyKernel(file(fakeBzImage(v, { is64: false }))).arch).toBe("386");
  // A pointer outside the setup sectors, or at no string, gives no version (never garbage).
  expect(identifyKernel(file(fakeBzImage(v, { pointer: 0x1f00 }))).version).toBeNull();
  expect(identifyKernel(file(fakeBzImage(v, { pointer: 0 }))).version).toBeNull();
});

test("ELF vmlinux: e_machine gives the architecture, linux_banner the version, also when a 4 MiB read cuts it", () => {
  const banner = "Linux version 6.6.1-fc (builder@ci) (gcc 12) #3 SMP";
  expect(identifyKernel(file(fakeVmlinux(62, banner)))).toEqual({ format: "vmlinux", arch: "amd64", version: "6.6.1-fc", versionString: "6.6.1-fc (builder@ci) (gcc 12) #3 SMP" });
  expect(identifyKernel(file(fakeVmlinux(183, banner))).arch).toBe("arm64");
  const cut = fakeVmlinux(62, banner, (4 << 20) + 8192, (4 << 20) - 20);
  expect(identifyKernel(file(cut)).version).toBe("6.6.1-fc");
  // printk's format string comes first in real kernels; it is not the banner.
  const both = fakeVmlinux(62, null);
  both.set(new TextEncoder().encode("Linux version %s (%s)\n\0"), 1000);
  both.set(new TextEncoder().encode(`${banner}\n\0`), 3000);
  expect(identifyKernel(file(both)).version).toBe("6.6.1-fc");
  expect(identifyKernel(file(fakeVmlinux(62, null))).version).toBeNull();
  expect(() => identifyKernel(file(fakeVmlinux(8, banner)))).toThrow("an ELF file for machine 8");
});

test("arm64 Image: the magic at 0x38, the version from linux_banner; a gzip'd one is refused saying what to do", () => {
  const img = new Uint8Array(16384);
  img.set(new TextEncoder().encode("ARM\x64"), 0x38);
  img.set(new TextEncoder().encode("Linux version 6.1.0-28-arm64 (x) #1\n\0"), 9000);
  expect(identifyKernel(file(img))).toMatchObject({ format: "Image", arch: "arm64", version: "6.1.0-28-arm64" });
  expect(() => identifyKernel(file(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0])))).toThrow("zcat it first");
  expect(() => identifyKernel(tmp)).toThrow("not a regular file");
  expect(() => identifyKernel(path.join(tmp, "absent"))).toThrow(KernelFileError);
});

test("kernelVersion: the kernel's and the modules directory's releases must agree; either alone will do", () => {
  const id = identifyKernel(file(fakeBzImage("6.1.0-1-cloud-amd64 (x) #1")));
  expect(kernelVersion(id, "k", "/m/lib/modules/6.1.0-1-cloud-amd64")).toBe("6.1.0-1-cloud-amd64");
  // A directory not named like a release says nothing.
  expect(kernelVersion(id, "k", "/tmp/my-modules")).toBe("6.1.0-1-cloud-amd64");
  expect(() => kernelVersion(id, "k", "/m/lib/modules/6.1.0-2-cloud-amd64")).toThrow("k is kernel 6.1.0-1-cloud-amd64, but the modules in /m/lib/modules/6.1.0-2-cloud-amd64 are for 6.1.0-2-cloud-amd64");
  const silent = identifyKernel(file(fakeVmlinux(62, null)));
  expect(kernelVersion(silent, "k", "/m/lib/modules/6.6.1")).toBe("6.6.1");
  expect(() => kernelVersion(silent, "k", null)).toThrow("does not say its version");
});
