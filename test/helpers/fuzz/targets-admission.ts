// Fuzz targets for admission (the join RPC, both directions), the node
// certificates every gossiped member record carries, and join tokens.
//   admission.request  what a member's Join handler runs on a stranger's bytes
//                      (hello or request): gRPC's decode, the field checks,
//                      the libp2p key proof
//   admission.reply    what a joining host runs on the member's answers
//                      (challenge or reply)
//   cert.node          what RecordVerifier runs on a record's certificate
//   token.parse        `weft join --token` and the API's Join
import * as grpc from '@grpc/grpc-js';
import { AdmissionService } from '../../../agent/wire/protos.ts';
import { AdmissionError, parseJoinHello, parseJoinRequest } from '../../../agent/cluster/admission-server.ts';
import { checkChallenge, checkReply, JoinError } from '../../../agent/cluster/admission-client.ts';
import { clientProof, NONCE_BYTES, serverProof, type JoinTranscript } from '../../../controlplane/security/join-proof.ts';
import { verifyProof } from '../../../agent/cluster/admission-proof.ts';
import { newPsk } from '../../../agent/cluster/psk.ts';
import { encodeSnapshot, FrameError } from '../../../agent/wire/cluster-codec.ts';
import { CertificateError, verifyNodeCertificate } from '../../../controlplane/security/certificates.ts';
import { formatToken, parseToken, TokenError } from '../../../controlplane/security/token.ts';
import type { FuzzTarget } from './target.ts';
import { material } from './material.ts';
import { mutateBytes } from './mutate.ts';
import type { Random } from './random.ts';

const join = AdmissionService.service['Join'] as grpc.MethodDefinition<object, object>;

/** gRPC answers a request it cannot decode with INTERNAL itself; any Error from the decoder is that. */
class Undecodable extends Error {}

function grpcDecode<T>(decode: (bytes: Buffer) => T, input: Uint8Array): T {
  try {
    return decode(Buffer.from(input));
  } catch (error) {
    throw new Undecodable((error as Error).message);
  }
}

export async function admissionTargets(): Promise<FuzzTarget[]> {
  const m = await material();
  const transcript: JoinTranscript = { clientNonce: new Uint8Array(NONCE_BYTES).fill(1), serverNonce: new Uint8Array(NONCE_BYTES).fill(2), serverCertificate: m.nodeCertificate };
  const request = {
    name: 'h2', advertiseAddr: '198.18.0.2', gossipPort: 7946, admissionPort: 2377,
    libp2pPublicKey: m.libp2pPublicKey, tlsPublicKey: m.keys.tls.publicKeySpki, proof: m.proof,
    clientProof: clientProof(m.token.secret, transcript, m.libp2pPublicKey, m.keys.tls.publicKeySpki),
  };
  const reply = {
    nodeId: m.nodeId, nodeCertificate: m.nodeCertificate, caCertificate: m.ca.certificate, caPrivateKey: m.ca.privateKey,
    psk: newPsk(), snapshot: encodeSnapshot({ members: [m.member], settings: { defaultAddrPool: '100.64.0.0/10' } }),
  };
  const challenge = { serverNonce: transcript.serverNonce, serverProof: serverProof(m.token.secret, transcript) };
  const now = new Date();
  return [
    {
      name: 'admission.request', group: 'wire', rejects: 'AdmissionError (gRPC decode errors: INTERNAL)',
      seeds: [join.requestSerialize({ hello: { clientNonce: transcript.clientNonce } }), join.requestSerialize({ request }), join.requestSerialize({ request: { ...request, name: 'h-3.lab' } })],
      run: async (input) => {
        const message = grpcDecode(join.requestDeserialize, input) as Record<string, unknown>;
        if (message['message'] !== 'request') return parseJoinHello(message);
        const parsed = parseJoinRequest(message);
        if (!(await verifyProof(parsed.libp2pPublicKey, parsed.tlsPublicKey, parsed.proof))) throw new AdmissionError(grpc.status.PERMISSION_DENIED, 'no proof');
        return parsed;
      },
      isClean: (error) => error instanceof AdmissionError || error instanceof Undecodable,
    },
    {
      name: 'admission.reply', group: 'wire', rejects: 'JoinError, FrameError (gRPC decode errors); a bad challenge is a reason string',
      seeds: [join.responseSerialize({ challenge }), join.responseSerialize({ reply })],
      run: async (input) => {
        const message = grpcDecode(join.responseDeserialize, input) as Record<string, unknown>;
        if (message['message'] !== 'reply') return checkChallenge(message, m.token.secret, transcript.clientNonce, m.nodeCertificate, 'fuzz');
        return checkReply(message['reply'] as Record<string, unknown>, m.ca.certificate, m.keys, m.token);
      },
      isClean: (error) => error instanceof JoinError || error instanceof FrameError || error instanceof Undecodable,
    },
    {
      name: 'cert.node', group: 'wire', rejects: 'CertificateError',
      seeds: [m.nodeCertificate],
      mutate: mutateDer,
      maxRandom: 2048,
      run: (input) => verifyNodeCertificate(input, m.ca.certificate, now),
      isClean: (error) => error instanceof CertificateError,
    },
    {
      name: 'token.parse', group: 'api', rejects: 'TokenError',
      seeds: [new TextEncoder().encode(formatToken(m.token)), new TextEncoder().encode(` ${formatToken(m.token).toLowerCase()}\n`)],
      mutate: mutateBytes,
      maxRandom: 256,
      run: (input) => parseToken(new TextDecoder().decode(input)),
      isClean: (error) => error instanceof TokenError,
    },
  ];
}

/**
 * DER is tag-length-value all the way down: besides byte noise, rewrite one
 * length octet (long and short forms are where ASN.1 decoders slip).
 */
function mutateDer(seed: Uint8Array, random: Random): Uint8Array {
  if (random.chance(0.5)) return mutateBytes(seed, random);
  const out = Uint8Array.from(seed);
  const lengths: number[] = [];
  for (let i = 1; i < out.length; i++) if (out[i - 1] === 0x30 || out[i - 1] === 0x04 || out[i - 1] === 0x03 || out[i - 1] === 0x06 || out[i - 1] === 0x0c || out[i - 1] === 0xa3) lengths.push(i);
  if (lengths.length === 0) return mutateBytes(seed, random);
  const at = random.pick(lengths);
  out[at] = random.pick([0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x88, 0xff, out[at]! + 1, out[at]! - 1]) & 0xff;
  return out;
}
