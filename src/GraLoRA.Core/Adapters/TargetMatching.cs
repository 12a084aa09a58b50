using System.Linq;
using System.Text.RegularExpressions;

namespace GraLoRA.Adapters
{
    /// <summary>PEFT's check_target_module_exists: which module names an <see cref="AdapterConfig"/> adapts.</summary>
    public static class TargetMatching
    {
        static bool NameOrSuffix(string key, string name) => key == name || key.EndsWith("." + name, System.StringComparison.Ordinal);

        /// <summary>
        /// True when <paramref name="key"/> (a full module name such as model.layers.0.self_attn.q_proj) is a target:
        /// not excluded, not a module to save, matched by the regex (full match) or by a name/suffix, and in
        /// LayersToTransform when that is given. <paramref name="outputHead"/> is never matched by all-linear.
        /// </summary>
        public static bool IsTarget(AdapterConfig config, string key, string outputHead)
        {
            if (config.ExcludeModules is { } exclude && exclude.Any(e => NameOrSuffix(key, e))) return false;
            if (config.ModulesToSave is { } save && save.Any(m => Regex.IsMatch(key, $"(^|.*\\.){Regex.Escape(m)}($|\\..*)"))) return false;
            if (config.TargetModulesRegex is { } regex) return Regex.IsMatch(key, $"^(?:{regex})$");
            var targets = config.TargetModules ?? AdapterDefaults.TargetModules;
            bool found = targets.Count == 1 && targets[0] == AdapterConfig.AllLinear
                ? key != outputHead
                : targets.Any(t => NameOrSuffix(key, t));
            if (!found || config.LayersToTransform is not { Count: > 0 } layers) return found;

            // The first numbered segment after the layer list is the layer index (lazy, so MoE expert indices are not taken).
            Match? index = null;
            if (config.LayersPattern is not { Count: > 0 } patterns)
                index = Regex.Match(key, @"^.*?\.[^.]*\.(\d+)\.");
            else
                foreach (var pattern in patterns)
                {
                    index = Regex.Match(key, $"^.*?\\.{pattern}\\.(\\d+)\\.");
                    if (index.Success) break;
                }
            return index is { Success: true } && layers.Contains(int.Parse(index.Groups[1].Value));
        }
    }
}
