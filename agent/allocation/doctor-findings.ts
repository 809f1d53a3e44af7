// `weft doctor` lines for the allocator: every refused (conflicting) ring
// merge, and gone nodes' ranges whose reclaim has been waiting too long.
import type { Finding } from '../../dataplane/doctor.ts';
import type { AllocationConflict } from './conflicts.ts';
import type { BlockedReclaim } from './reclaimer.ts';

/** A reclaim waits this long (a member restarting, the removal still spreading) before doctor reports it. */
export const RECLAIM_REPORT_AFTER_MS = 30_000;

export function allocationFindings(conflicts: readonly AllocationConflict[], blocked: BlockedReclaim | undefined, now: Date): Finding[] {
  const findings: Finding[] = conflicts.map(conflictFinding);
  if (blocked && now.getTime() - blocked.since.getTime() >= RECLAIM_REPORT_AFTER_MS) findings.push(reclaimFinding(blocked));
  return findings;
}

function conflictFinding(c: AllocationConflict): Finding {
  if (c.via === 'restore') {
    return {
      subject: `allocation space ${c.space}`,
      problem: c.explanations.join('; '),
      hint: 'the saved allocation state in <data-dir>/cluster/alloc could not be read; ranges of this space with values in use stay unusable here; restore the file from a backup, or remove this host (`weft node rm` on another member) and join it again',
    };
  }
  const from = c.source === 'reclaim' ? 'a reclaim ring sync' : `node ${c.source}`;
  return {
    subject: `allocation space ${c.space}`,
    problem: `refused a conflicting ring from ${from} (via ${c.via}, ${c.count} time(s) since ${c.firstSeen.toISOString()}): ${c.explanations.join('; ')}`,
    hint: 'the refused ring was never applied; a node that lost its allocation state or was reclaimed while alive may hand out values twice: remove it with `weft node rm` and join it again (look for "refused a conflicting allocation ring" in the agent logs)',
  };
}

function reclaimFinding(b: BlockedReclaim): Finding {
  const waiting = b.waitingFor.map((w) => `${w.node} (${w.reason})`).join(', ');
  return {
    subject: `allocation ranges of ${b.gone.join(', ')}`,
    problem: `removed or departed nodes still own allocation ranges, not reclaimed since ${b.since.toISOString()}: waiting for an answer from ${waiting}`,
    hint: 'a member that does not answer may hold ranges the gone node gave it, so nothing is reclaimed until every active member answers; bring it back, or remove it with `weft node rm` if it is gone for good',
  };
}
