import test from 'ava';
import fc from 'fast-check';
import type { MemberView } from '../../controlplane/membership/member-table.ts';
import type { MemberState } from '../../controlplane/membership/messages.ts';
import { compareClaims, judgeOther, judgeSelf } from '../../controlplane/membership/update-rules.ts';

const view = (state: MemberState, incarnation: number, address = 'addr-b'): MemberView => ({
  id: 'b',
  address,
  state,
  incarnation,
  stateChangedAt: 0,
});
const claim = (state: MemberState, incarnation: number, address = 'addr-b') => ({ state, incarnation, address });

test('claims about others: (incarnation, alive < suspect < dead < left) decides', (t) => {
  t.is(judgeOther(view('alive', 1), claim('suspect', 1)), 'apply');
  t.is(judgeOther(view('suspect', 1), claim('suspect', 1)), 'confirm');
  t.is(judgeOther(view('suspect', 1), claim('alive', 1)), 'ignore');
  t.is(judgeOther(view('suspect', 1), claim('alive', 2)), 'apply');
  t.is(judgeOther(view('suspect', 1), claim('dead', 1)), 'apply');
  t.is(judgeOther(view('dead', 1), claim('alive', 1)), 'ignore');
  t.is(judgeOther(view('dead', 1), claim('alive', 2)), 'apply');
  t.is(judgeOther(view('dead', 1), claim('left', 1)), 'apply');
  t.is(judgeOther(view('left', 1), claim('dead', 1)), 'ignore');
  t.is(judgeOther(view('alive', 3), claim('dead', 2)), 'ignore');
  t.is(judgeOther(view('alive', 1), claim('alive', 1, 'elsewhere')), 'ignore');
});

test('strangers enter only by being alive', (t) => {
  t.is(judgeOther(undefined, claim('alive', 0)), 'apply');
  for (const state of ['suspect', 'dead', 'left'] as const) t.is(judgeOther(undefined, claim(state, 9)), 'ignore');
});

test('claims about ourselves: refute accusations at or above our incarnation, re-announce stale ones', (t) => {
  const self = view('alive', 3);
  t.is(judgeSelf(self, claim('suspect', 3)), 'refute');
  t.is(judgeSelf(self, claim('dead', 5)), 'refute');
  t.is(judgeSelf(self, claim('left', 3)), 'refute');
  t.is(judgeSelf(self, claim('suspect', 2)), 'reannounce');
  t.is(judgeSelf(self, claim('dead', 2)), 'reannounce');
  t.is(judgeSelf(self, claim('alive', 3)), 'ignore');
  t.is(judgeSelf(self, claim('alive', 3, 'elsewhere')), 'refute');
  t.is(judgeSelf(self, claim('alive', 4)), 'refute');
  t.is(judgeSelf(view('left', 3), claim('dead', 9)), 'ignore');
});

const arbitraryClaim = fc.record({
  state: fc.constantFrom<MemberState>('alive', 'suspect', 'dead', 'left'),
  incarnation: fc.integer({ min: 0, max: 4 }),
  address: fc.constant('addr-b'),
});

/** Applies claims in order to a member first known alive at incarnation 0. */
function fold(claims: readonly { state: MemberState; incarnation: number; address: string }[]): string {
  let current = view('alive', 0);
  for (const c of claims) if (judgeOther(current, c) === 'apply') current = { ...current, ...c };
  return `${current.state}@${current.incarnation}`;
}

test('a known member ends as the maximum claim, whatever order gossip delivers them in', (t) => {
  fc.assert(
    fc.property(
      fc.array(arbitraryClaim, { maxLength: 12 }).chain((claims) =>
        fc.tuple(fc.constant(claims), fc.shuffledSubarray(claims, { minLength: claims.length, maxLength: claims.length })),
      ),
      ([claims, shuffled]) => {
        const best = claims.reduce((a, b) => (compareClaims(b, a) > 0 ? b : a), claim('alive', 0));
        return fold(claims) === fold(shuffled) && fold(claims) === `${best.state}@${best.incarnation}`;
      },
    ),
  );
  t.pass();
});
