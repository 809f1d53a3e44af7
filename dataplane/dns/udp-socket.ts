// UDP sockets of the DNS server and its forwarder. Every datagram goes to an
// IP literal (a client's source address, a validated upstream), so the
// address is "looked up" synchronously: dgram's default lookup defers every
// send to the next tick, which costs ~15% of the server's throughput.
import { createSocket, type Socket } from 'node:dgram';

function literalAddress(address: string, _family: unknown, callback: (error: Error | null, address: string, family: number) => void): void {
  callback(null, address, 4);
}

export function udpSocket(recvBufferSize?: number): Socket {
  return createSocket({ type: 'udp4', lookup: literalAddress, ...(recvBufferSize === undefined ? {} : { recvBufferSize }) });
}
