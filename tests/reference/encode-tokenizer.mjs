// Reference encoder/decoder for the .NET tokenizer tests: transformers.js tokenizers (@lenml/tokenizers).
// stdin: {"tokenizerJson": path, "tokenizerConfig": path, "texts": [string...], "addSpecialTokens": bool,
//         "decode": [[id...]...], "skipSpecialTokens": bool, "cleanUpTokenizationSpaces": bool|null}
//         "pairs": [[text, textPair]...] (optional)
// stdout: {"ids": [[id...]...], "decoded": [string...], "pairIds": [[id...]...], "pairTypeIds": [[type...]...]}
import { readFileSync } from "node:fs";
import { TokenizerLoader } from "@lenml/tokenizers";

// Errors print as one short message: Node's default report quotes the minified library line (megabytes).
process.on("uncaughtException", (e) => {
  process.stderr.write(`encode-tokenizer.mjs: ${e?.stack ?? e}\n`.slice(0, 4000));
  process.exit(1);
});

const input = JSON.parse(readFileSync(0, "utf8"));
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(input.tokenizerJson, "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(input.tokenizerConfig, "utf8")),
});
const addSpecial = input.addSpecialTokens ?? true;
const ids = (input.texts ?? []).map((t) =>
  Array.from(tokenizer.encode(t, { add_special_tokens: addSpecial }), Number));
const cleanUp = input.cleanUpTokenizationSpaces ?? null;
// transformers.js refuses an empty id list; Python's tokenizers decodes it to "".
const decoded = (input.decode ?? []).map((d) => d.length === 0 ? "" :
  tokenizer.decode(d, { skip_special_tokens: input.skipSpecialTokens ?? false, clean_up_tokenization_spaces: cleanUp }));
const pairs = (input.pairs ?? []).map(([a, b]) =>
  tokenizer._encode_plus(a, { text_pair: b, add_special_tokens: addSpecial, return_token_type_ids: true }));
const pairIds = pairs.map((p) => Array.from(p.input_ids, Number));
const pairTypeIds = pairs.map((p) => Array.from(p.token_type_ids ?? [], Number));
process.stdout.write(JSON.stringify({ ids, decoded, pairIds, pairTypeIds }));
