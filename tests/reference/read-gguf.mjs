// Reads a GGUF file with Hugging Face's @huggingface/gguf (an independent parser) and prints its metadata and
// tensor infos as JSON: { metadata: {key: value}, tensors: [{name, shape, dtype}] }. Long arrays are summarised as
// {length, first, last}. Usage: node read-gguf.mjs < path
import { gguf } from "@huggingface/gguf";
import { readFileSync } from "node:fs";

const path = readFileSync(0, "utf8").trim();
const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
const summarise = (v) =>
  Array.isArray(v) && v.length > 16 ? { length: v.length, first: v.slice(0, 4), last: v.slice(-4) } : v;
const out = { metadata: {}, tensors: [] };
for (const [k, v] of Object.entries(metadata)) out.metadata[k] = typeof v === "bigint" ? Number(v) : summarise(v);
for (const t of tensorInfos) out.tensors.push({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype, offset: Number(t.offset) });
process.stdout.write(JSON.stringify(out));
