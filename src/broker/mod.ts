export type { RejectCounts, Subscription, Transport, TrialDelivery } from "./transport.ts";
export { MemoryTransport } from "./memory.ts";
export { connectNats, type NatsOptions, NatsTransport } from "./nats.ts";
export { freePort, type LocalServer, natsServerBinary, startLocalServer } from "./local_server.ts";
export * as messages from "./messages.ts";
