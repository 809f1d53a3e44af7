// The name rules weft checks (objects, services, container IDs, namespace
// prefixes and names) are one family built by namePattern: the same
// characters, the same first character, their own length.
import test from 'ava';
import fc from 'fast-check';
import { namePattern, OBJECT_NAME, SERVICE_NAME, CONTAINER_ID } from '../../lib/names.ts';
import { validateNetnsName, validatePrefix } from '../../dataplane/names.ts';

test('a pattern takes exactly max characters of the family, starting with a letter or digit', (t) => {
  const { pattern, rule } = namePattern(5);
  for (const ok of ['a', 'A1_.-', '9abc']) t.true(pattern.test(ok), ok);
  for (const bad of ['', 'abcdef', '-a', '.a', '_a', 'a b', 'a/b', 'a:b', 'é']) t.false(pattern.test(bad), bad);
  t.is(rule, '1-5 letters, digits, "_", ".", "-", starting with a letter or digit');
  t.false(namePattern(5, false).pattern.test('a.b'), 'no dots in a DNS label');
});

test('the named rules keep their lengths', (t) => {
  t.true(OBJECT_NAME.test('a'.repeat(63)));
  t.false(OBJECT_NAME.test('a'.repeat(64)));
  t.false(SERVICE_NAME.test('web.v2'));
  t.true(CONTAINER_ID.test('c'.repeat(255)));
  t.false(CONTAINER_ID.test('c'.repeat(256)));
  t.notThrows(() => validatePrefix('p'.repeat(64)));
  t.throws(() => validatePrefix('p'.repeat(65)), { message: /must be 1-64 letters/ });
  t.throws(() => validateNetnsName('-x'), { message: /must be 1-128 letters, digits/ });
});

test('the pattern agrees with a character-by-character reading of the rule', (t) => {
  const family = /^[A-Za-z0-9_.-]$/;
  fc.assert(fc.property(fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 10 }), (text, max) => {
    const expected = text.length >= 1 && text.length <= max && /^[A-Za-z0-9]$/.test(text[0]!) && [...text].every((c) => family.test(c));
    return namePattern(max).pattern.test(text) === expected;
  }));
  t.pass();
});
