// /dev/kvm: missing, present but not ours, present and usable. Each failure says images can
// still be built, and its fix fits the cause.
import { expect, test } from "bun:test";
import { kvmCheck } from "../../src/doctor/kvm.ts";
import { fakeContext, fakeProbe } from "./fake-probe.ts";

test("a /dev/kvm this user can read and write passes", async () => {
  const r = await kvmCheck.run(fakeContext(fakeProbe({ paths: { "/dev/kvm": "char-device" }, readWrite: ["/dev/kvm"] })));
  expect(r).toEqual({ status: "pass", summary: "/dev/kvm is usable" });
});

test("no /dev/kvm fails; the fix loads the module on x86, and building still works", async () => {
  const r = await kvmCheck.run(fakeContext(fakeProbe()));
  expect(r.status).toBe("fail");
  expect(r.summary).toContain("/dev/kvm does not exist");
  expect(r.summary).toContain("images can still be built");
  expect(r.fix).toContain("modprobe kvm_intel");
  expect(r.fix).toContain("kvm_amd");
});

test("on arm64 the fix does not offer x86 modules", async () => {
  const r = await kvmCheck.run(fakeContext(fakeProbe(), { arch: "arm64" }));
  expect(r.status).toBe("fail");
  expect(r.fix).not.toContain("kvm_intel");
});

test("a /dev/kvm only others may open fails with the kvm group as the fix", async () => {
  const r = await kvmCheck.run(fakeContext(fakeProbe({ paths: { "/dev/kvm": "char-device" } })));
  expect(r.status).toBe("fail");
  expect(r.summary).toBe("/dev/kvm exists but this user cannot open it read-write (images can still be built here, not booted)");
  expect(r.fix).toContain("sudo usermod -aG kvm $USER");
  expect(r.fix).toContain("log in again");
});

test("something that is not a device at /dev/kvm fails", async () => {
  const r = await kvmCheck.run(fakeContext(fakeProbe({ paths: { "/dev/kvm": "file" }, readWrite: ["/dev/kvm"] })));
  expect(r.status).toBe("fail");
  expect(r.summary).toContain("is a file");
});
