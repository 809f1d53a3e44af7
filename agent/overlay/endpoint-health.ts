// Per local endpoint, the services whose health check it fails or has not
// passed yet. The overlay publishes this with the endpoint, so every host's
// DNS and load balancers leave a failing backend out.
export class EndpointHealth {
  readonly #failing = new Map<string, Set<string>>();

  /** Records a verdict; true when it changed what the endpoint fails (then it must be republished). */
  record(endpointId: string, service: string, healthy: boolean): boolean {
    const failing = this.#failing.get(endpointId) ?? new Set<string>();
    if (healthy === !failing.has(service)) return false;
    if (healthy) failing.delete(service);
    else failing.add(service);
    if (failing.size > 0) this.#failing.set(endpointId, failing);
    else this.#failing.delete(endpointId);
    return true;
  }

  /** The endpoint fails these services until a check passes (a new backend, or what was published before a restart). */
  startFailing(endpointId: string, services: readonly string[]): void {
    if (services.length > 0) this.#failing.set(endpointId, new Set(services));
  }

  forget(endpointId: string): void {
    this.#failing.delete(endpointId);
  }

  failing(endpointId: string): string[] {
    return [...(this.#failing.get(endpointId) ?? [])].sort();
  }
}
