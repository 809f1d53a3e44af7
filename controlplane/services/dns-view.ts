// The shapes the resolver's answers are computed from and returned in: the
// asking sandbox's view of its networks, the question, and the outcome.
import type { Answer } from 'dns-packet';

export interface DnsPort { port: number; protocol: 'tcp' | 'udp' }
export interface DnsTask { ip: string; name: string }
export interface DnsService { name: string; mode: 'vip' | 'dnsrr'; vip: string; ports: readonly DnsPort[]; backends: readonly DnsTask[] }
export interface DnsEndpoint { name: string; aliases: readonly string[]; ip: string }
export interface DnsNetworkView { name: string; subnet: string; services: readonly DnsService[]; endpoints: readonly DnsEndpoint[] }
export interface DnsClientView { networks: readonly DnsNetworkView[] }

/** dns-packet's names: type 'A', 'SRV'...; class 'IN' when absent. */
export interface DnsQuestion { name: string; type: string; class?: string }
export interface AnswerOptions { ttl: number; random: () => number }

export type DnsOutcome =
  | { kind: 'answer'; rcode: 'NOERROR' | 'NXDOMAIN'; answers: Answer[]; additionals: Answer[] }
  | { kind: 'forward' };
