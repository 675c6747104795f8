// src/vm: talking to running microVMs from the host. Only the guest agent's vsock channel so far.
export { AGENT_PORT, connectVsock, VsockConnection, VsockError, type GuestInit, type GuestStatus, type VsockOptions } from "./vsock.ts";
