// banger's SSH identity: one ed25519 key pair per user under $XDG_CONFIG_HOME/banger/ssh/,
// made on first use. Its public key goes into every pulled image's /root/.ssh/authorized_keys.
// The key is made with node:crypto and written in OpenSSH's own formats (the private key as
// "openssh-key-v1", unencrypted), so no ssh-keygen is needed on the host.
import fs from "node:fs";
import path from "node:path";

export interface SshKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  /** One line: "ssh-ed25519 AAAA... banger". */
  publicKey: string;
}

const KEY_TYPE = "ssh-ed25519";
const COMMENT = "banger";

/** The key pair in `dir` (id_ed25519, id_ed25519.pub), made (0600, dir 0700) if missing. */
export function ensureSshKey(dir: string): SshKeyPair {
  const privateKeyPath = path.join(dir, "id_ed25519");
  const publicKeyPath = `${privateKeyPath}.pub`;
  if (!fs.existsSync(privateKeyPath) || !fs.existsSync(publicKeyPath)) writeNewKey(dir, privateKeyPath, publicKeyPath);
  const publicKey = fs.readFileSync(publicKeyPath, "utf8").trim();
  if (!publicKey.startsWith(`${KEY_TYPE} `)) throw new Error(`${publicKeyPath}: not an ed25519 public key (remove it and its private key to have banger make a new pair)`);
  return { privateKeyPath, publicKeyPath, publicKey };
}

/** node:crypto, loaded only to make a key: every pull reads the key, and the module costs ~5 ms to load. */
function nodeCrypto(): typeof import("node:crypto") {
  return require("node:crypto") as typeof import("node:crypto");
}

function writeNewKey(dir: string, privateKeyPath: string, publicKeyPath: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { publicKey, privateKey } = nodeCrypto().generateKeyPairSync("ed25519");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d!, "base64url");
  const files = openSshFiles(seed, pub, COMMENT);
  // Written under temporary names and renamed, private key last: a crash leaves no half pair.
  const tmp = `${privateKeyPath}.${process.pid}.tmp`;
  fs.writeFileSync(`${tmp}.pub`, files.publicLine, { mode: 0o644 });
  fs.writeFileSync(tmp, files.privatePem, { mode: 0o600 });
  fs.renameSync(`${tmp}.pub`, publicKeyPath);
  fs.renameSync(tmp, privateKeyPath);
}

/** SSH wire format: a uint32 length, then the bytes. */
function sshString(b: Uint8Array | string): Buffer {
  const bytes = typeof b === "string" ? Buffer.from(b) : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The OpenSSH public key line and the unencrypted "openssh-key-v1" PEM of an ed25519 key. */
export function openSshFiles(seed: Uint8Array, pub: Uint8Array, comment: string): { publicLine: string; privatePem: string } {
  const pubBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  const check = nodeCrypto().randomBytes(4).readUInt32BE();
  let secret = Buffer.concat([u32(check), u32(check), sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, ... to the cipher block size ("none": 8).
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), u32(1), sshString(pubBlob), sshString(secret)]);
  const b64 = body.toString("base64").replace(/(.{70})/g, "$1\n").replace(/\n$/, "");
  return {
    publicLine: `${KEY_TYPE} ${pubBlob.toString("base64")} ${comment}\n`,
    privatePem: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}
