// Text imports of the guest files (src/inject/assets.ts): Bun gives their content as a string.
declare module "*/banger-init" {
  const text: string;
  export default text;
}
declare module "*/banger-network-bootstrap" {
  const text: string;
  export default text;
}
declare module "*/banger-first-boot" {
  const text: string;
  export default text;
}
declare module "*/banger-vsock-agent" {
  const text: string;
  export default text;
}
declare module "*/poweroff" {
  const text: string;
  export default text;
}
declare module "*/banger-network.service" {
  const text: string;
  export default text;
}
declare module "*/banger-first-boot.service" {
  const text: string;
  export default text;
}
declare module "*/banger-vsock-agent.socket" {
  const text: string;
  export default text;
}
declare module "*/banger-vsock-agent@.service" {
  const text: string;
  export default text;
}
declare module "*/banger-vsock.conf" {
  const text: string;
  export default text;
}
