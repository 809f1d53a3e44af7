// The command `weft init` and `weft token` tell the operator to run on the
// other hosts: this host's advertised address (what the others reach it on),
// with the admission port only when it is not the default.
import { DEFAULT_ADMISSION_PORT } from '../api/defaults.ts';

export interface JoinTarget {
  /** The address the agent advertises to the cluster. */
  advertiseAddr: string;
  /** Where the agent accepts joins, IP:PORT. */
  listenAddr: string;
}

export function joinCommand(token: string, target: JoinTarget): string {
  const port = Number(target.listenAddr.split(':').pop());
  const address = Number.isInteger(port) && port !== DEFAULT_ADMISSION_PORT ? `${target.advertiseAddr}:${port}` : target.advertiseAddr;
  return `weft join --token ${token} ${address}`;
}
