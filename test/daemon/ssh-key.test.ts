// banger's SSH key pair: made once, 0600 in a 0700 dir, in formats OpenSSH itself reads.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureSshKey } from "../../src/daemon/ssh-key.ts";
import { testWith } from "../helpers/env.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-ssh-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("made on first use with private modes, then reused as is", async () => {
  const dir = path.join(tmp, "a", "ssh");
  const k = await ensureSshKey(dir);
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  expect(fs.statSync(k.privateKeyPath).mode & 0o777).toBe(0o600);
  expect(k.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} banger$/);
  const before = fs.readFileSync(k.privateKeyPath, "utf8");
  expect(await ensureSshKey(dir)).toEqual(k);
  expect(fs.readFileSync(k.privateKeyPath, "utf8")).toBe(before);
  expect(before).toStartWith("-----BEGIN OPENSSH PRIVATE KEY-----\n");
});

testWith({ tools: ["ssh-keygen"] }, "ssh-keygen reads the private key and derives the same public key", async () => {
  const k = await ensureSshKey(path.join(tmp, "b"));
  const p = Bun.spawnSync(["ssh-keygen", "-y", "-f", k.privateKeyPath]);
  expect(p.stderr.toString()).toBe("");
  expect(p.stdout.toString().trim()).toBe(k.publicKey);
});

test("a public key file that is not ed25519 is a clear error", async () => {
  const dir = path.join(tmp, "c");
  const k = await ensureSshKey(dir);
  fs.writeFileSync(k.publicKeyPath, "ssh-rsa AAAA x\n");
  await expect(ensureSshKey(dir)).rejects.toThrow(/not an ed25519 public key \(remove it and its private key/);
});

test("concurrent first uses in one process make one key, and all of them get it", async () => {
  const dir = path.join(tmp, "d");
  const keys = await Promise.all(Array.from({ length: 5 }, () => ensureSshKey(dir)));
  const onDisk = fs.readFileSync(path.join(dir, "id_ed25519.pub"), "utf8").trim();
  for (const k of keys) expect(k.publicKey).toBe(onDisk);
  expect(fs.readdirSync(dir).sort()).toEqual(["id_ed25519", "id_ed25519.pub"]);
});
