using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.Training
{
    /// <summary>
    /// Short trials of temporary adapters on one model (Find-GraLoRAK's candidates, Compare-GraLoRAMethod's methods): each
    /// config gets a fresh adapter, made from the same seed, that is removed after its trial; the model's active adapters
    /// and which parameters train are restored at the end, so the model is left as it was.
    /// </summary>
    internal static class AdapterTrials
    {
        public static List<T> Run<T>(BaseModel model, string baseName, IEnumerable<AdapterConfig> configs, long seed, Func<string, AdapterConfig, T> trial)
        {
            var previousActive = model.Adapters.Active.ToList();
            var requiresGrad = model.Network.parameters().Select(p => (p, p.requires_grad)).ToList();
            string name = baseName;
            while (model.Adapters.Names.Contains(name)) name += "_";
            var results = new List<T>();
            try
            {
                foreach (var config in configs)
                {
                    TorchSharp.torch.manual_seed(seed);              // the same initialisation stream for every trial
                    model.AddAdapter(name, config);
                    try { results.Add(trial(name, config)); }
                    finally { model.Adapters.Remove(name); }
                }
            }
            finally
            {
                if (previousActive.Count > 0) model.Adapters.SetActive(previousActive);
                foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            }
            return results;
        }
    }
}
