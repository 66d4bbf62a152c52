import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  httpDuration: Histogram<'route' | 'method'>;
  operationDuration: Histogram<'kind' | 'state'>;
  operationsInFlight: Gauge;
}

function histogram<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
  return new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'berth_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: histogram(registry, 'berth_http_request_duration_seconds', 'HTTP request duration', ['route', 'method'], [
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]),
    operationDuration: histogram(registry, 'berth_operation_duration_seconds', 'Duration of operation runs by kind and final state of the run', ['kind', 'state'], [
      0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800,
    ]),
    operationsInFlight: new Gauge({
      name: 'berth_operations_in_flight',
      help: 'Operations this process is running now',
      registers: [registry],
    }),
  };
}
