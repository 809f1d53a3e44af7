// A network namespace of the test's own for an agent that a test runs outside
// a lab: an agent that inits makes its gateway bridge (weft_gw) and its
// nftables tables where it runs, which must never be the machine's own
// namespace. Like the lab, only the network namespace is entered (nsenter
// --net), so the agent still sees the test's files and sockets; loopback
// inside it is the agent's own.
import { ip, removeNamespacesWithPrefix } from '../../dataplane/testing/underlay.ts';
import { uniquePrefix } from './weft-cli.ts';

export interface PrivateNetns {
  name: string;
  /** `command args` to run inside the namespace (nsenter execs in place: signals reach the command). */
  wrap(command: string, args: readonly string[]): [string, string[]];
  /** Kills what still runs inside and deletes the namespace with everything the agent made in it. */
  remove(): Promise<void>;
}

export async function privateNetns(tag: string): Promise<PrivateNetns> {
  const prefix = uniquePrefix(tag);
  const name = `${prefix}-host`;
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'lo', 'up');
  return {
    name,
    wrap: (command, args) => ['nsenter', [`--net=/run/netns/${name}`, command, ...args]],
    remove: () => removeNamespacesWithPrefix(prefix),
  };
}
