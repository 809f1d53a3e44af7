import test from 'ava';
import fc from 'fast-check';
import { formatToken, parseToken, newTokenSecret, caDigestOf, TokenError } from '../../controlplane/security/token.ts';
import { base32Decode, base32Encode } from '../../controlplane/security/base32.ts';

test('a token survives format and parse unchanged', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (caDigest, secret) => {
      const parsed = parseToken(formatToken({ caDigest, secret }));
      t.deepEqual([...parsed.caDigest], [...caDigest]);
      t.deepEqual([...parsed.secret], [...secret]);
    }),
  );
});

test('tokens look like WEFT-1-<52 chars>-<52 chars>', (t) => {
  const token = formatToken({ caDigest: caDigestOf(new Uint8Array([1, 2, 3])), secret: newTokenSecret() });
  t.regex(token, /^WEFT-1-[A-Z2-7]{52}-[A-Z2-7]{52}$/);
});

test('base32 round-trips any bytes and rejects foreign characters', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => t.deepEqual([...(base32Decode(base32Encode(bytes)) ?? [])], [...bytes])));
  t.is(base32Decode('ABC1'), undefined);
  t.is(base32Decode('AB=='), undefined);
});

const good = formatToken({ caDigest: new Uint8Array(32).fill(7), secret: new Uint8Array(32).fill(9) });
const [, , digest, secret] = good.split('-');

for (const [label, text, message] of [
  ['empty', '', /malformed join token/],
  ['garbage', 'hello', /malformed join token/],
  ['wrong prefix', good.replace('WEFT', 'SWMTKN'), /malformed join token/],
  ['wrong version', good.replace('WEFT-1-', 'WEFT-2-'), /unsupported join token version "2"/],
  ['truncated secret', `WEFT-1-${digest}-${secret!.slice(0, 40)}`, /secret has 40 characters, expected 52/],
  ['truncated digest', `WEFT-1-${digest!.slice(1)}-${secret}`, /CA digest has 51 characters/],
  ['bad characters', `WEFT-1-${digest}-${secret!.slice(0, 51)}1`, /secret is not valid base32/],
  ['extra part', `${good}-X`, /malformed join token/],
] as const) {
  test(`a ${label} token is refused with a clear message`, (t) => {
    const error = t.throws(() => parseToken(text), { instanceOf: TokenError });
    t.regex(error!.message, message);
    t.regex(error!.message, /weft (init|token)/, 'the message says where to get a good token');
  });
}

test('surrounding whitespace from copy and paste is tolerated', (t) => {
  t.notThrows(() => parseToken(`  ${good}\n`));
});
