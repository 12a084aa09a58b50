using System;
using System.Threading;
using GraLoRA.Hub;

namespace GraLoRA.Models
{
    public sealed partial class BaseModel
    {
        /// <summary>The files a model needs from its repository: configs, weights, tokenizer and chat templates.</summary>
        public static readonly string[] HubFilePatterns = { "*.json", "*.safetensors", "*.jinja" };

        /// <summary>
        /// Downloads <paramref name="repoId"/> at <paramref name="revision"/> into the Hugging Face cache (or finds it
        /// there; offline with HF_HUB_OFFLINE=1) and loads it. <paramref name="log"/> receives status lines on the
        /// calling thread.
        /// </summary>
        public static BaseModel LoadFromHub(string repoId, string? revision = null, BaseModelLoadOptions? options = null,
            Action<string>? log = null, CancellationToken cancellation = default, HubSettings? settings = null)
        {
            settings ??= HubSettings.FromEnvironment();
            using var client = new HubClient(settings);
            log?.Invoke(settings.Offline
                ? $"Looking up {repoId}@{revision ?? "main"} in {settings.CacheDirectory} (offline)"
                : $"Fetching {repoId}@{revision ?? "main"} from {settings.Endpoint} into {settings.CacheDirectory}");
            string snapshot = client.SnapshotDownload(repoId, revision, HubFilePatterns, cancellationToken: cancellation);
            log?.Invoke($"Loading {snapshot}");
            return Load(snapshot, options, repoId);
        }
    }
}
