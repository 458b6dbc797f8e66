// Validate AsyncAPI documents with the official parser (@asyncapi/parser 3.x).
// Usage: node check.mjs FILE...  — prints each diagnostic; exit 1 on any error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check.mjs FILE...");
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"), {
    source: file,
  });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of diagnostics) {
    const level = DiagnosticSeverity[d.severity].toLowerCase();
    console.log(`${file}: ${level}: ${d.code}: ${d.message} at /${d.path.join("/")}`);
  }
  if (document === undefined || errors.length > 0) {
    failed = true;
    console.log(`${file}: INVALID (${errors.length} errors)`);
  } else {
    console.log(`${file}: valid AsyncAPI ${document.version()}`);
  }
}
process.exit(failed ? 1 : 0);
