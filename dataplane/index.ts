// The data plane's public face: what the agent imports. It receives desired
// state and makes the kernel match; it decides nothing (docs/dataplane.md).
import type { DataplaneContext, DataplaneOptions } from './context.ts';
import type { AttachmentSpec, Network, NetworkEndpoints, NetworkSpec } from './types.ts';
import type { Attachment, Sandbox } from './sandbox.ts';
import type { EnsureResult } from './overlay-network.ts';
import type { ReconcileOptions, ReconcileResult } from './reconciler.ts';
import type { DoctorInput, Finding } from './doctor.ts';
import type { NamespaceHomeProblem } from './namespace-home.ts';
import { dataplaneContext } from './context.ts';
import { ensureNetwork, removeNetwork } from './overlay-network.ts';
import { adoptSandbox, attachSandbox, createSandbox, destroySandbox, detachSandbox, sandboxFrom } from './sandbox.ts';
import { reconcile } from './reconciler.ts';
import { KnownEntries } from './known-entries.ts';
import { networkNamespaceName } from './names.ts';
import { doctor } from './doctor.ts';
import { checkNamespaceHome } from './namespace-home.ts';
import { listNamedNetns } from './netns.ts';
import { writeResolvConf, type ResolvConfResult } from './resolv-conf.ts';
import { KeyedSerializer } from '../lib/serial.ts';
import { egressPlane, type EgressPlane, type EgressSpec } from './egress.ts';
import { startDetachedIn, stopProcessesIn } from './detached-process.ts';
import { publishPlane, type PublishPlane } from './publish.ts';
import { ingressPlane, type IngressPlane } from './ingress.ts';
import { linksBackHome, movedLinkName, prepareMovableLink } from './movable-link.ts';
import { readShaping, removeLeftoverShaping, shapeSandbox, unshapeSandbox, type ShapingState } from './bandwidth.ts';
import type { BandwidthLimits } from '../lib/bandwidth.ts';

export type { DataplaneContext, DataplaneOptions } from './context.ts';
export type { AttachmentSpec, Counts, Network, NetworkEndpoints, NetworkSpec, RemoteEndpoint } from './types.ts';
export type { Attachment, Sandbox } from './sandbox.ts';
export type { EnsureResult } from './overlay-network.ts';
export type { NetworkReconcileResult, ReconcileOptions, ReconcileResult } from './reconciler.ts';
export type { DoctorAttachment, DoctorInput, Finding } from './doctor.ts';
export type { NamespaceHomeProblem } from './namespace-home.ts';
export type { ShapingState } from './bandwidth.ts';
export { shapingProblems } from './bandwidth.ts';
export type { EgressPlane, EgressSpec } from './egress.ts';
export type { HostListener, PublishPlane, PublishRule } from './publish.ts';
export type { Runner, RunResult } from './exec.ts';
export { BatchError, CommandError, processRunner } from './exec.ts';
export { DesiredStateError } from './diff.ts';
export { macFromIp } from './mac.ts';
export { networkNamespaceName, sandboxNamespaceName, BRIDGE, VXLAN, DEFAULT_DSTPORT, VXLAN_OVERHEAD } from './names.ts';
export {
  dataplaneContext, ensureNetwork, removeNetwork, createSandbox, adoptSandbox, attachSandbox, detachSandbox, destroySandbox, sandboxFrom, reconcile, doctor,
  checkNamespaceHome, writeResolvConf,
};

export interface Dataplane {
  readonly context: DataplaneContext;
  ensureNetwork(spec: NetworkSpec): Promise<EnsureResult>;
  removeNetwork(vni: number): Promise<boolean>;
  /** VNIs of the network namespaces with this data plane's prefix (e.g. to remove leftovers at start-up). */
  listNetworks(): Promise<number[]>;
  createSandbox(id: string): Promise<{ sandbox: Sandbox; created: boolean }>;
  adoptSandbox(nameOrPath: string): Promise<Sandbox>;
  sandbox(nameOrPath: string): Sandbox;
  attach(sandbox: Sandbox, network: Network, spec: AttachmentSpec): Promise<Attachment>;
  detach(sandbox: Sandbox, vni: number): Promise<boolean>;
  destroySandbox(sandbox: Sandbox, vnis: readonly number[]): Promise<string[]>;
  /** A sandbox link whose sandbox end waits as `localName` in the agent's namespace for a runtime to move it (movable-link.ts). */
  prepareMovableLink(sandbox: Sandbox, network: Network, localName: string, mac: string): Promise<void>;
  /** The moved end's name inside the sandbox; undefined until it is there. */
  movedLinkName(sandbox: Sandbox, network: Network): Promise<string | undefined>;
  /** Which of these moved links are back in the data plane's own namespace (the runtime took them out again). */
  linksBackHome(localNames: readonly string[]): Promise<string[]>;
  /** Limits the sandbox's traffic on its link to network `vni` to exactly `limits` (bandwidth.ts); `mtu` is the link's. */
  shape(sandbox: Sandbox, vni: number, limits: BandwidthLimits, mtu: number): Promise<string[]>;
  /** Removes the shaping the link's veth does not take with it (its ifb); call after detach. */
  unshape(sandbox: Sandbox, vni: number): Promise<boolean>;
  readShaping(sandbox: Sandbox, vni: number): Promise<ShapingState>;
  /** Removes shaping left behind by sandboxes that went (ifb devices without their veth) on network `vni`. */
  removeLeftoverShaping(vni: number): Promise<string[]>;
  /** Only for named sandboxes; `ip netns exec NAME` then uses it. A file weft did not write is left alone ('foreign'). */
  writeResolvConf(sandboxName: string, lines: readonly string[]): ResolvConfResult;
  reconcile(desired: readonly NetworkEndpoints[], options?: ReconcileOptions): Promise<ReconcileResult>;
  doctor(input: DoctorInput): Promise<Finding[]>;
  checkNamespaceHome(): NamespaceHomeProblem | undefined;
  /** The host's gateway bridge (resolver, health checks, egress) for this egress spec. */
  egress(spec: EgressSpec): EgressPlane;
  /** The host's published ports (DNAT to sandboxes on the gateway bridge) and its listening sockets. */
  publish(): PublishPlane;
  /** The ingress routing mesh's table inside a network's ingress sandbox. */
  ingress(): IngressPlane;
  /** Starts `command` in a named sandbox namespace, detached; returns its process ID. */
  startDetached(netnsName: string, command: readonly string[], logPath: string, onError: (error: Error) => void): number;
  /** Stops every process in a sandbox namespace weft made (SIGTERM now, SIGKILL later): the sandbox is going away. */
  stopProcessesIn(netnsName: string): { signalled: number; stopped: Promise<'stopped' | 'killed'> };
}

/** The data plane with calls on the same network serialised (reconcile vs ensure vs attach). */
export function createDataplane(options: DataplaneOptions): Dataplane {
  const ctx = dataplaneContext(options);
  const serial = new KeyedSerializer();
  const key = (vni: number) => `vni:${vni}`;
  // Creating or removing a network may empty its kernel tables: the next reconcile reads them.
  const known = new KnownEntries();
  const forget = (vni: number) => known.forget(networkNamespaceName(ctx.nsPrefix, vni));
  return {
    context: ctx,
    ensureNetwork: (spec) => serial.run(key(spec.vni), () => {
      forget(spec.vni);
      return ensureNetwork(ctx, spec);
    }),
    removeNetwork: (vni) => serial.run(key(vni), () => {
      forget(vni);
      return removeNetwork(ctx, vni);
    }),
    listNetworks: async () => (await listNamedNetns(ctx.runner, `${ctx.nsPrefix}-n`))
      .map((name) => name.slice(`${ctx.nsPrefix}-n`.length)).filter((rest) => /^[1-9][0-9]*$/.test(rest)).map(Number),
    createSandbox: (id) => createSandbox(ctx, id),
    adoptSandbox: (nameOrPath) => adoptSandbox(ctx, nameOrPath),
    sandbox: (nameOrPath) => sandboxFrom(ctx, nameOrPath),
    attach: (sandbox, network, spec) => serial.run(key(network.vni), () => attachSandbox(ctx, sandbox, network, spec)),
    detach: (sandbox, vni) => serial.run(key(vni), () => detachSandbox(ctx, sandbox, vni)),
    destroySandbox: (sandbox, vnis) => serial.runAll(vnis.map(key), () => destroySandbox(ctx, sandbox, vnis)),
    prepareMovableLink: (sandbox, network, localName, mac) => serial.run(key(network.vni), () => prepareMovableLink(ctx, sandbox, network, localName, mac)),
    movedLinkName: (sandbox, network) => movedLinkName(ctx, sandbox, network),
    linksBackHome: (localNames) => linksBackHome(ctx, localNames),
    shape: (sandbox, vni, limits, mtu) => serial.run(key(vni), () => shapeSandbox(ctx, sandbox, vni, limits, mtu)),
    unshape: (sandbox, vni) => serial.run(key(vni), () => unshapeSandbox(ctx, sandbox, vni)),
    readShaping: (sandbox, vni) => readShaping(ctx, sandbox, vni),
    removeLeftoverShaping: (vni) => serial.run(key(vni), () => removeLeftoverShaping(ctx, vni)),
    writeResolvConf: (name, lines) => writeResolvConf(name, lines),
    reconcile: (desired, opts) => serial.runAll(desired.map((d) => key(d.vni)), () => reconcile(ctx, desired, { known, ...opts })),
    doctor: (input) => doctor(ctx, input),
    checkNamespaceHome: () => checkNamespaceHome(),
    egress: (spec) => egressPlane(ctx, spec),
    publish: () => publishPlane(ctx),
    ingress: () => ingressPlane(ctx),
    startDetached: startDetachedIn,
    stopProcessesIn: (netnsName) => stopProcessesIn(netnsName),
  };
}
