// Serves the Admission RPC over TLS with this node's certificate (the chain
// includes the CA, so a joining host can pin it against its token). The
// secret is checked in constant time before anything else happens: a refused
// join leaves no trace in the cluster.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import type { Logger } from 'pino';
import { AdmissionService } from '../wire/protos.ts';
import { secretsEqual } from '../../controlplane/security/secret.ts';
import { issueNodeCertificate, toPem } from '../../controlplane/security/certificates.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import { encodeSnapshot } from '../wire/cluster-codec.ts';
import { verifyProof } from './admission-proof.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { NodeKeys } from '../daemon/data-dir.ts';

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const admissionRequestSchema = z.object({
  secret: bytes.refine((b) => b.length === 32, 'the token secret must be 32 bytes'),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'name must be 1-63 letters, digits, ".", "_", "-"'),
  advertiseAddr: z.string().refine((a) => isIPv4(a), 'advertise address must be IPv4'),
  gossipPort: z.number().int().min(1).max(65535),
  admissionPort: z.number().int().min(1).max(65535),
  libp2pPublicKey: bytes.refine((b) => b.length > 0 && b.length < 1024, 'libp2p public key missing or too large'),
  tlsPublicKey: bytes.refine((b) => b.length > 0 && b.length < 1024, 'TLS public key missing or too large'),
  proof: bytes.refine((b) => b.length > 0 && b.length < 1024, 'proof missing or too large'),
});

type Callback = grpc.sendUnaryData<Record<string, unknown>>;

export async function startAdmissionServer(cluster: ClusterNode, keys: NodeKeys, listenAddr: string, logger: Logger): Promise<grpc.Server> {
  const log = logger.child({ component: 'admission' });
  const server = new grpc.Server();
  server.addService(AdmissionService.service, {
    Join: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: Callback) => {
      admit(cluster, call.request)
        .then((reply) => callback(null, reply))
        .catch((error: AdmissionError) => {
          log.warn({ peer: call.getPeer(), reason: error.message }, 'refused a join');
          callback({ code: error.code ?? grpc.status.INTERNAL, details: error.message });
        });
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(
    null,
    [{
      private_key: Buffer.from(toPem(keys.tls.privateKeyPkcs8, 'PRIVATE KEY')),
      cert_chain: Buffer.from(toPem(cluster.material.nodeCertificate, 'CERTIFICATE') + toPem(cluster.material.caCertificate, 'CERTIFICATE')),
    }],
    false,
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(listenAddr, credentials, (error) => (error ? reject(new Error(`cannot listen for joins on ${listenAddr}: ${error.message}`)) : resolve())),
  );
  return server;
}

export class AdmissionError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

export type AdmissionRequest = z.infer<typeof admissionRequestSchema>;

/** A join request as gRPC decoded it, checked field by field; AdmissionError when it is not one. */
export function parseAdmissionRequest(raw: unknown): AdmissionRequest {
  const parsed = admissionRequestSchema.safeParse(normaliseBytes(raw));
  if (!parsed.success) throw new AdmissionError(grpc.status.INVALID_ARGUMENT, `bad join request: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

async function admit(cluster: ClusterNode, raw: unknown): Promise<Record<string, unknown>> {
  const request = parseAdmissionRequest(raw);
  if (!secretsEqual(request.secret, cluster.token.secret)) {
    throw new AdmissionError(
      grpc.status.PERMISSION_DENIED,
      'the join token secret is not valid for this cluster (it may have been rotated); get the current token with `weft token` on a member',
    );
  }
  const peerId = await verifyProof(request.libp2pPublicKey, request.tlsPublicKey, request.proof);
  if (!peerId) throw new AdmissionError(grpc.status.PERMISSION_DENIED, 'the joining host did not prove ownership of its libp2p key');
  if (cluster.roster.byPeerId(peerId)) {
    throw new AdmissionError(grpc.status.ALREADY_EXISTS, 'a member with this libp2p identity exists already; a host that left or was removed must join with a fresh data dir');
  }
  const nodeId = randomBytes(16).toString('hex');
  const certificate = await issueNodeCertificate(
    { certificate: cluster.material.caCertificate, privateKey: cluster.material.caPrivateKey },
    { nodeId, peerId, publicKeySpki: request.tlsPublicKey, ip: request.advertiseAddr },
    new Date(),
  );
  const record: MemberRecord = {
    nodeId,
    name: request.name,
    peerId,
    address: request.advertiseAddr,
    gossipPort: request.gossipPort,
    admissionPort: request.admissionPort,
    certificate,
    version: 1,
    status: 'active',
    changedBy: cluster.nodeId,
  };
  cluster.addAdmitted(record);
  return {
    nodeId,
    nodeCertificate: certificate,
    caCertificate: cluster.material.caCertificate,
    caPrivateKey: cluster.material.caPrivateKey,
    psk: cluster.material.psk,
    snapshot: encodeSnapshot(cluster.snapshot()),
  };
}

function normaliseBytes(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Buffer.isBuffer(v) ? new Uint8Array(v) : v]));
}
