// patchmoi's runner for codex-flows Bun flows written as modules
// (`export default`, `defineBunFlow(...)`): reads the FlowRunContext from
// stdin, calls the module's default export with it, prints FLOW_RESULT.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const script = process.argv[2];
const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const text = Buffer.concat(chunks).toString("utf8").trim();
const context = text ? JSON.parse(text) : {};
const module = await import(pathToFileURL(resolve(script)).href);
const flow = module.default;
const run = typeof flow === "function" ? flow : flow && typeof flow.run === "function" ? flow.run.bind(flow) : undefined;
if (!run) {
  throw new Error(`${script} has no default export to run (a function, or an object with run())`);
}
const result = await run(context);
if (result !== undefined) {
  process.stdout.write(`\nFLOW_RESULT ${JSON.stringify(result)}\n`);
}
