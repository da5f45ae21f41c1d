/**
 * What the proxy answered, as two Prometheus metrics: requests by service and
 * status class (a counter), and their latency by service (a histogram). Every
 * request adds to plain numbers kept per service; a scrape renders them in
 * prom-client's format, through its registry. prom-client's own children
 * validate and hash their labels on every call: a cost per request that this
 * does not have.
 */

import type { Registry } from "prom-client";

interface Series {
  /** Requests by status class: index 1 to 5 (1xx to 5xx). */
  codes: number[];
  /** Observations per bucket (not cumulative), the last one past every bound. */
  buckets: number[];
  sum: number;
  count: number;
}

/** One value of a metric, as prom-client's registry reads it. */
interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export class ProxyMetrics {
  readonly #bounds: readonly number[];
  /** Per service; a service's series outlive it, as they would in prom-client. */
  readonly #series = new Map<string, Series>();

  /** Registers both metrics with `registers`; `bounds`: the histogram's upper bounds in seconds, ascending. */
  constructor(
    registers: Registry[],
    names: { requests: [string, string]; latency: [string, string] },
    bounds: readonly number[],
  ) {
    this.#bounds = bounds;
    const [requests, requestsHelp] = names.requests;
    const [latency, latencyHelp] = names.latency;
    const metric = (name: string, help: string, type: "counter" | "histogram", values: () => Value[]) => ({
      name,
      help,
      type,
      aggregator: "sum",
      get: () => Promise.resolve({ name, help, type, aggregator: "sum", values: values() }),
    });
    for (const registry of registers) {
      registry.registerMetric(metric(requests, requestsHelp, "counter", () => this.#requestValues()) as never);
      registry.registerMetric(metric(latency, latencyHelp, "histogram", () => this.#latencyValues(latency)) as never);
    }
  }

  /** The proxy answered `status` for `service` after `ms`. */
  answered(service: string, status: number, ms: number): void {
    let series = this.#series.get(service);
    if (!series) {
      series = { codes: [0, 0, 0, 0, 0, 0], buckets: new Array(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.#series.set(service, series);
    }
    const code = Math.floor(status / 100);
    if (code >= 1 && code <= 5) series.codes[code]++;
    const seconds = ms / 1000;
    let i = 0;
    while (i < this.#bounds.length && seconds > this.#bounds[i]) i++;
    series.buckets[i]++;
    series.sum += seconds;
    series.count++;
  }

  #requestValues(): Value[] {
    const values: Value[] = [];
    for (const [service, series] of this.#series) {
      for (let code = 1; code <= 5; code++) {
        if (series.codes[code] > 0) values.push({ labels: { service, code: `${code}xx` }, value: series.codes[code] });
      }
    }
    return values;
  }

  #latencyValues(name: string): Value[] {
    const values: Value[] = [];
    for (const [service, series] of this.#series) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.buckets[i];
        values.push({ metricName: `${name}_bucket`, labels: { le: this.#bounds[i], service }, value: cumulative });
      }
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", service }, value: series.count });
      values.push({ metricName: `${name}_sum`, labels: { service }, value: series.sum });
      values.push({ metricName: `${name}_count`, labels: { service }, value: series.count });
    }
    return values;
  }
}
