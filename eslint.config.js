// ESLint flat config: typescript-eslint's type-aware rules, so floating promises and unsafe `any`
// are caught by the type checker rather than in review. Formatting is Prettier's job, not ESLint's.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "models/", "build/", "coverage/", "bench/results/", "data/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      // Numbers and arrays of them (shapes, ids) in error messages read fine.
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowArray: true, allowBoolean: true, allowNullish: true },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Implementations of promise-returning interfaces (services, fakes) are async without awaiting.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Tests read JSON bodies and fixtures as untyped values on purpose; the unsafe-any rules guard
    // the shipped code. Floating promises are still caught everywhere.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/unbound-method": "off",
      // Fuzzers edit parsed safetensors headers of any shape.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  { files: ["**/*.js", "**/*.mjs"], ...tseslint.configs.disableTypeChecked },
);
