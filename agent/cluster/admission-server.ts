// Serves the Admission RPC over TLS with this node's certificate (the chain
// includes the CA, so a joining host can pin it against its token). One Join
// stream per joiner: hello → challenge → request → reply (see
// proto/admission.proto). The joiner's proof of the token secret is checked in
// constant time before anything else happens: a refused join leaves no trace
// in the cluster. Connections pass the admission guard first; each source
// address also has a budget of join attempts, and refusals are logged sampled.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import type { Logger } from 'pino';
import { AdmissionService } from '../wire/protos.ts';
import { issueNodeCertificate, toPem } from '../../controlplane/security/certificates.ts';
import { clientProof, NONCE_BYTES, proofsEqual, serverProof, type JoinTranscript } from '../../controlplane/security/join-proof.ts';
import { KeyedRateLimiter, type BucketRule } from '../../controlplane/security/rate-limit.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import { encodeSnapshot } from '../wire/cluster-codec.ts';
import { verifyProof } from './admission-proof.ts';
import { SampledLog } from '../util/sampled-log.ts';
import { addressOnly, DEFAULT_GUARD_LIMITS, startAdmissionGuard, type GuardLimits } from './admission-guard.ts';
import type { ClusterNode } from './cluster-node.ts';
import type { NodeKeys } from '../daemon/data-dir.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';

// A join request is a name, an address and three small keys: well under 4 KB.
export const MAX_JOIN_MESSAGE_BYTES = 16 * 1024;
// A joiner needs two messages; the whole exchange takes milliseconds.
const JOIN_STREAM_TIMEOUT_MS = 10_000;
const JOIN_RATE: BucketRule = { burst: 5, perSecond: 0.5 };

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const helloSchema = z.object({
  message: z.literal('hello', 'the first message of a join must be hello'),
  hello: z.object({ clientNonce: bytes.refine((b) => b.length === NONCE_BYTES, `the client nonce must be ${NONCE_BYTES} bytes`) }),
});
const admissionRequestSchema = z.object({
  clientProof: bytes.refine((b) => b.length === 32, 'the client proof must be 32 bytes'),
  name: z.string().regex(OBJECT_NAME, `name must be ${OBJECT_NAME_RULE}`),
  advertiseAddr: z.string().refine((a) => isIPv4(a), 'advertise address must be IPv4'),
  gossipPort: z.number().int().min(1).max(65535),
  admissionPort: z.number().int().min(1).max(65535),
  libp2pPublicKey: bytes.refine((b) => b.length > 0 && b.length < 1024, 'libp2p public key missing or too large'),
  tlsPublicKey: bytes.refine((b) => b.length > 0 && b.length < 1024, 'TLS public key missing or too large'),
  proof: bytes.refine((b) => b.length > 0 && b.length < 1024, 'proof missing or too large'),
});
const requestSchema = z.object({ message: z.literal('request', 'the second message of a join must be the request'), request: admissionRequestSchema });
export type AdmissionRequest = z.infer<typeof admissionRequestSchema>;

export interface AdmissionServerLimits {
  guard: GuardLimits;
  joinRate: BucketRule;
  refusalLog: { burst: number; intervalMs: number };
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionServerLimits = {
  guard: DEFAULT_GUARD_LIMITS,
  joinRate: JOIN_RATE,
  refusalLog: { burst: 10, intervalMs: 60_000 },
};

export interface AdmissionServer {
  close(): Promise<void>;
}

type JoinStream = grpc.ServerDuplexStream<unknown, Record<string, unknown>>;

export async function startAdmissionServer(
  cluster: ClusterNode,
  keys: NodeKeys,
  listenAddr: string,
  logger: Logger,
  limits: AdmissionServerLimits = DEFAULT_ADMISSION_LIMITS,
): Promise<AdmissionServer> {
  const refusals = new SampledLog(logger.child({ component: 'admission' }), limits.refusalLog, { message: 'refused a join', summary: 'joins refused', subjectField: 'peer' });
  const joinRate = new KeyedRateLimiter(limits.joinRate);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_JOIN_MESSAGE_BYTES,
    'grpc.max_concurrent_streams': 2,
    'grpc.max_connection_idle_ms': 30_000,
    'grpc.max_connection_age_ms': 60_000,
    'grpc.max_connection_age_grace_ms': 5_000,
  });
  server.addService(AdmissionService.service, {
    Join: (call: JoinStream) => {
      const peer = call.getPeer();
      if (!joinRate.take(addressOnly(peer.replace(/:\d+$/, '')), Date.now())) {
        refusals.event(peer, 'too many join attempts from this address');
        return fail(call, new AdmissionError(grpc.status.RESOURCE_EXHAUSTED, 'too many join attempts from this address; wait a minute and try again'));
      }
      runJoin(cluster, call).catch((error: AdmissionError) => {
        refusals.event(peer, error.message);
        fail(call, error);
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
  const injector = server.createConnectionInjector(credentials);
  const guard = await startAdmissionGuard(listenAddr, injector, limits.guard, (peer, reason) => refusals.event(peer, reason));
  return {
    close: async () => {
      await guard.close();
      injector.destroy();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      refusals.flush();
    },
  };
}

export class AdmissionError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

function fail(call: JoinStream, error: AdmissionError): void {
  if (call.destroyed || call.writableEnded) return;
  call.emit('error', { code: error.code ?? grpc.status.INTERNAL, details: error.message });
}

/** Reads the next message of the stream, or fails when the joiner stops or stalls. */
function nextMessage(call: JoinStream, deadline: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(() => reject(new AdmissionError(grpc.status.DEADLINE_EXCEEDED, 'the joiner took too long'))), Math.max(0, deadline - Date.now()));
    const onData = (message: unknown): void => done(() => resolve(message));
    const onEnd = (): void => done(() => reject(new AdmissionError(grpc.status.CANCELLED, 'the joiner stopped before finishing the join (a wrong or rotated token, or it refused this member)')));
    const done = (settle: () => void): void => {
      clearTimeout(timer);
      call.off('data', onData);
      call.off('end', onEnd);
      call.off('cancelled', onEnd);
      call.pause();
      settle();
    };
    call.on('data', onData);
    call.once('end', onEnd);
    call.once('cancelled', onEnd);
    call.resume();
  });
}

async function runJoin(cluster: ClusterNode, call: JoinStream): Promise<void> {
  const deadline = Date.now() + JOIN_STREAM_TIMEOUT_MS;
  call.pause();
  const hello = parseJoinHello(await nextMessage(call, deadline));
  // The secret may rotate while the joiner thinks: both proofs use the one read here.
  const secret = cluster.token.secret;
  const transcript: JoinTranscript = {
    clientNonce: hello.clientNonce,
    serverNonce: new Uint8Array(randomBytes(NONCE_BYTES)),
    serverCertificate: cluster.material.nodeCertificate,
  };
  call.write({ challenge: { serverNonce: transcript.serverNonce, serverProof: serverProof(secret, transcript) } });
  const request = parseJoinRequest(await nextMessage(call, deadline));
  const reply = await admit(cluster, request, secret, transcript);
  call.write({ reply });
  call.end();
}

/** What admitting a joiner needs of the cluster member that admits it. */
export type AdmittingCluster = Pick<ClusterNode, 'material' | 'roster' | 'nodeId' | 'addAdmitted' | 'snapshot'>;

/**
 * Checks a joiner's request and adds it to the roster; returns the reply.
 * Joins run side by side (a lab joins several hosts at once through one
 * member): the identity check is repeated after the last await, where
 * nothing else can run before addAdmitted, so two joins with one identity
 * cannot both pass it while the first awaits its certificate.
 */
export async function admit(cluster: AdmittingCluster, request: AdmissionRequest, secret: Uint8Array, transcript: JoinTranscript): Promise<Record<string, unknown>> {
  if (!proofsEqual(request.clientProof, clientProof(secret, transcript, request.libp2pPublicKey, request.tlsPublicKey))) {
    throw new AdmissionError(
      grpc.status.PERMISSION_DENIED,
      'the join token secret is not valid for this cluster (it may have been rotated); get the current token with `weft token` on a member',
    );
  }
  const peerId = await verifyProof(request.libp2pPublicKey, request.tlsPublicKey, request.proof);
  if (!peerId) throw new AdmissionError(grpc.status.PERMISSION_DENIED, 'the joining host did not prove ownership of its libp2p key');
  refuseKnownIdentity(cluster, peerId);
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
  refuseKnownIdentity(cluster, peerId); // again: a join with this identity may have been admitted while this one awaited
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

function refuseKnownIdentity(cluster: AdmittingCluster, peerId: string): void {
  if (cluster.roster.byPeerId(peerId)) {
    throw new AdmissionError(grpc.status.ALREADY_EXISTS, 'a member with this libp2p identity exists already; a host that left or was removed must join with a fresh data dir');
  }
}

/** A joiner's first message as gRPC decoded it, checked field by field; AdmissionError when it is not a hello. */
export function parseJoinHello(raw: unknown): { clientNonce: Uint8Array } {
  const parsed = helloSchema.safeParse(normalise(raw));
  if (!parsed.success) throw new AdmissionError(grpc.status.INVALID_ARGUMENT, `bad join request: ${z.prettifyError(parsed.error)}`);
  return parsed.data.hello;
}

/** A joiner's second message, checked field by field; AdmissionError when it is not a request. */
export function parseJoinRequest(raw: unknown): AdmissionRequest {
  const parsed = requestSchema.safeParse(normalise(raw));
  if (!parsed.success) throw new AdmissionError(grpc.status.INVALID_ARGUMENT, `bad join request: ${z.prettifyError(parsed.error)}`);
  return parsed.data.request;
}

/** proto-loader gives Buffers; the schemas (and the crypto) want plain Uint8Arrays, at any depth. */
function normalise(raw: unknown): unknown {
  if (Buffer.isBuffer(raw)) return new Uint8Array(raw);
  if (raw === null || typeof raw !== 'object' || raw instanceof Uint8Array) return raw;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, normalise(v)]));
}
