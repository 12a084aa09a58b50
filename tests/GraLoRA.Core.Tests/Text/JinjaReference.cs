using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GraLoRA.Tests
{
    /// <summary>A template and its variables (a JSON object), for both our engine and the reference.</summary>
    internal sealed record ReferenceCase(string Template, string ContextJson, string? Now = null);

    /// <summary>What the reference did: rendered <see cref="Output"/>, or raised <see cref="Error"/>.</summary>
    internal sealed record ReferenceResult(string? Output, string? Error);

    /// <summary>Renders cases with @huggingface/jinja through tests/reference/render-jinja.mjs, all in one Node run.</summary>
    internal static class JinjaReference
    {
        public static List<ReferenceResult> Render(IEnumerable<ReferenceCase> cases)
        {
            var request = new JsonArray();
            foreach (var c in cases)
                request.Add(new JsonObject
                {
                    ["template"] = c.Template,
                    ["context"] = JsonNode.Parse(c.ContextJson),
                    ["now"] = c.Now,
                });
            string stdout = ReferenceTools.RunNode("render-jinja.mjs", request.ToJsonString());
            using var doc = JsonDocument.Parse(stdout);
            return doc.RootElement.EnumerateArray().Select(r => new ReferenceResult(
                r.TryGetProperty("output", out var o) ? o.GetString() : null,
                r.TryGetProperty("error", out var e) ? e.GetString() : null)).ToList();
        }

        /// <summary>A JSON object's properties as template variables (the engine takes JsonElement values as they are).</summary>
        public static Dictionary<string, object?> Context(string json)
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        }
    }
}
