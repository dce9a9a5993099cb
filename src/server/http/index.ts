// The monitoring endpoint (docs/monitoring.md). server.ts is the HTTP server (limits, the request's error
// boundary), routes.ts its route table; handlers.ts answers the read-only pages and blocklist-api.ts the
// blocklist's; metrics.ts is the Prometheus exporter, clients-query.ts and clients.ts read and answer
// /api/clients; reply.ts, errors.ts, body.ts and security.ts are how requests are answered, refused, read
// and checked.

export { parseBlockWrite } from "./blocklist-api.ts";
export { MAX_BODY_BYTES } from "./body.ts";
export { type ClientRow, clientRow, selectClients } from "./clients.ts";
export { type ClientQuery, type ClientSortKey, parseClientQuery, QueryError } from "./clients-query.ts";
export type { MonitorSource } from "./context.ts";
export { explainHttpBindError } from "./errors.ts";
export { METRICS_CONTENT_TYPE, type MetricsInput, metricsText } from "./metrics.ts";
export { type PacketTotals, packetTotals } from "./packet-totals.ts";
export { HttpMonitor, type HttpMonitorOptions } from "./server.ts";
