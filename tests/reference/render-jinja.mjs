// Renders templates with Hugging Face's JavaScript Jinja (@huggingface/jinja), the reference for the .NET engine.
// stdin:  JSON list of {template, context, now?}; `now` ("YYYY-MM-DDTHH:mm:ss", local time) fixes the clock that
//         the built-in strftime_now reads, so dated templates (Llama 3) render deterministically.
// stdout: JSON list, one {output} or {error} per case, in order.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const RealDate = globalThis.Date;
const RealDateTimeFormat = Intl.DateTimeFormat;

function withClock(now, render) {
  if (!now) return render();
  const [y, mo, d, h, mi, s] = now.split(/[-T:]/).map(Number);
  const fixed = new RealDate(y, mo - 1, d, h, mi, s).getTime();
  class FixedDate extends RealDate {
    constructor(...args) {
      super(...(args.length === 0 ? [fixed] : args));
    }
    static now() {
      return fixed;
    }
  }
  globalThis.Date = FixedDate;
  // Month names as Python's strftime writes them in the C locale, whatever this machine's locale is.
  Intl.DateTimeFormat = function (locales, options) {
    return new RealDateTimeFormat(locales ?? "en-US", options);
  };
  try {
    return render();
  } finally {
    globalThis.Date = RealDate;
    Intl.DateTimeFormat = RealDateTimeFormat;
  }
}

const cases = JSON.parse(readFileSync(0, "utf8"));
const results = cases.map(({ template, context, now }) => {
  try {
    return { output: withClock(now, () => new Template(template).render(context ?? {})) };
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(results));
