// /dev/vhost-vsock and /dev/net/tun: present and usable passes, anything else warns (a VM boots
// without them), with the modprobe that brings each.
import { expect, test } from "bun:test";
import { tapCheck, vsockCheck } from "../../src/doctor/devices.ts";
import { fakeContext, fakeProbe } from "./fake-probe.ts";

for (const [check, device, module] of [
  [vsockCheck, "/dev/vhost-vsock", "vhost_vsock"],
  [tapCheck, "/dev/net/tun", "tun"],
] as const) {
  test(`${check.id}: ${device} present and usable passes`, async () => {
    const r = await check.run(fakeContext(fakeProbe({ paths: { [device]: "char-device" }, readWrite: [device] })));
    expect(r.status).toBe("pass");
    expect(r.summary).toStartWith(`${device} is usable`);
    expect(r.fix).toBeUndefined();
  });

  test(`${check.id}: no ${device} warns; fix: modprobe ${module}`, async () => {
    const r = await check.run(fakeContext(fakeProbe()));
    expect(r.status).toBe("warn");
    expect(r.summary).toStartWith(`${device} does not exist`);
    expect(r.fix).toBe(`\`sudo modprobe ${module}\``);
  });

  test(`${check.id}: ${device} that only others may open warns`, async () => {
    const r = await check.run(fakeContext(fakeProbe({ paths: { [device]: "char-device" } })));
    expect(r.status).toBe("warn");
    expect(r.summary).toContain("cannot open it read-write");
  });
}

test("ids", () => {
  expect(vsockCheck.id).toBe("vsock");
  expect(tapCheck.id).toBe("tap");
});
