// Lint rules for the whole tree (`npm run lint`, also run by `npm test`).
// typescript-eslint's recommended set, without type information so that it
// stays fast; `tsc --noEmit` does the type checking.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      // `({ secret: _s, ...rest }) => rest` drops a field on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // `let { a, b } = ...` where only one is reassigned stays one statement.
      'prefer-const': ['error', { destructuring: 'all' }],
    },
  },
);
