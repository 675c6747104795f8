// A VMM on the search path: Firecracker or QEMU for the host's architecture; none is a warning,
// since images can still be built.
import { expect, test } from "bun:test";
import { qemuArch, vmmCheck } from "../../src/doctor/vmm.ts";
import { fakeContext, fakeProbe } from "./fake-probe.ts";

test("firecracker passes and says where it is", async () => {
  const r = await vmmCheck.run(fakeContext(fakeProbe({ executables: { firecracker: "/usr/local/bin/firecracker" } })));
  expect(r).toEqual({ status: "pass", summary: "firecracker (/usr/local/bin/firecracker)" });
});

test("QEMU alone passes; both are listed when both are there", async () => {
  const qemu = await vmmCheck.run(fakeContext(fakeProbe({ executables: { "qemu-system-x86_64": "/usr/bin/qemu-system-x86_64" } })));
  expect(qemu).toEqual({ status: "pass", summary: "qemu-system-x86_64 (/usr/bin/qemu-system-x86_64)" });
  const both = await vmmCheck.run(fakeContext(fakeProbe({ executables: { firecracker: "/fc", "qemu-system-x86_64": "/q" } })));
  expect(both.summary).toBe("firecracker (/fc), qemu-system-x86_64 (/q)");
});

test("an arm64 host looks for qemu-system-aarch64, not the x86 one", async () => {
  const probe = fakeProbe({ executables: { "qemu-system-x86_64": "/usr/bin/qemu-system-x86_64" } });
  const r = await vmmCheck.run(fakeContext(probe, { arch: "arm64" }));
  expect(probe.asked.which).toEqual(["firecracker", "qemu-system-aarch64"]);
  expect(r.status).toBe("warn");
  expect(r.summary).toContain("qemu-system-aarch64");
  expect(r.fix).toContain("qemu-system-arm");
  expect(qemuArch("x64")).toBe("x86_64");
});

test("no VMM warns: images can be built but not booted", async () => {
  const r = await vmmCheck.run(fakeContext(fakeProbe()));
  expect(r.status).toBe("warn");
  expect(r.summary).toBe("neither firecracker nor qemu-system-x86_64 is on PATH: images can be built but not booted here");
  expect(r.fix).toContain("Firecracker");
  expect(r.fix).toContain("apt-get install qemu-system-x86");
});
