using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace GraLoRA.Hub
{
    /// <summary>
    /// Where the Hugging Face Hub is and where its cache lives, resolved from the same environment
    /// variables as Python's huggingface_hub (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN,
    /// HF_HUB_OFFLINE, ...). Each value can be overridden with <c>with { ... }</c>; overriding one
    /// value does not re-derive the others (setting <see cref="HomeDirectory"/> does not move
    /// <see cref="CacheDirectory"/>).
    /// </summary>
    public sealed record HubSettings
    {
        /// <summary>The public Hub, used when HF_ENDPOINT is not set.</summary>
        public const string DefaultEndpoint = "https://huggingface.co";

        /// <summary>Default for <see cref="MetadataTimeout"/> and <see cref="DownloadTimeout"/> (huggingface_hub's 10 seconds).</summary>
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

        string endpoint = DefaultEndpoint;

        /// <summary>Base URL of the Hub, without a trailing slash (HF_ENDPOINT). Must be an absolute http(s) URL.</summary>
        public string Endpoint
        {
            get => endpoint;
            init => endpoint = NormalizeEndpoint(value, "Endpoint");
        }

        /// <summary>HF_HOME: the folder of the token file and of the default cache.</summary>
        public string HomeDirectory { get; init; } = "";

        /// <summary>HF_HUB_CACHE: the folder holding <c>models--org--name</c> repositories.</summary>
        public string CacheDirectory { get; init; } = "";

        /// <summary>The access token (HF_TOKEN, else the token file); never printed by <see cref="ToString"/>.</summary>
        public string? Token { get; init; }

        /// <summary>Where <see cref="Token"/> came from ("HF_TOKEN" or the token file's path), for error messages; null without a token.</summary>
        public string? TokenSource { get; init; }

        /// <summary>The token file read when HF_TOKEN is not set (HF_TOKEN_PATH, else <c>$HF_HOME/token</c>).</summary>
        public string TokenPath { get; init; } = "";

        /// <summary>HF_HUB_OFFLINE: no network at all, files come from the cache or the call fails.</summary>
        public bool Offline { get; init; }

        /// <summary>Limit for one metadata request (HEAD of a file, repository listing): HF_HUB_ETAG_TIMEOUT seconds.</summary>
        public TimeSpan MetadataTimeout { get; init; } = DefaultTimeout;

        /// <summary>Limit for a download to answer and for each read of its content to make progress: HF_HUB_DOWNLOAD_TIMEOUT seconds.</summary>
        public TimeSpan DownloadTimeout { get; init; } = DefaultTimeout;

        HubSettings() { }

        /// <summary>
        /// Resolves the settings the way huggingface_hub does: HF_HOME (default
        /// <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>); HF_HUB_CACHE (legacy
        /// HUGGINGFACE_HUB_CACHE, default <c>$HF_HOME/hub</c>); HF_ENDPOINT; HF_TOKEN (legacy
        /// HUGGING_FACE_HUB_TOKEN), else the file HF_TOKEN_PATH or <c>$HF_HOME/token</c>; HF_HUB_OFFLINE
        /// (or TRANSFORMERS_OFFLINE) = 1/true/yes/on; HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT in seconds.
        /// Empty variables count as unset.
        /// </summary>
        /// <param name="environment">Variables to read instead of the process environment (tests, hosts); HOME is read from it too.</param>
        public static HubSettings FromEnvironment(IReadOnlyDictionary<string, string?>? environment = null)
        {
            var env = environment ?? ProcessEnvironment();
            string? Get(string name) => env.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v) ? v : null;

            string userHome = Get("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            string Expand(string path) =>
                Path.GetFullPath(path == "~" ? userHome
                    : path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal) ? Path.Combine(userHome, path.Substring(2))
                    : path);

            string home = Expand(Get("HF_HOME") ?? Path.Combine(Get("XDG_CACHE_HOME") ?? Path.Combine(userHome, ".cache"), "huggingface"));
            string cache = Expand(Get("HF_HUB_CACHE") ?? Get("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"));
            string tokenPath = Expand(Get("HF_TOKEN_PATH") ?? Path.Combine(home, "token"));

            string? token = CleanToken(Get("HF_TOKEN"));
            string? source = token is null ? null : "HF_TOKEN";
            if (token is null && CleanToken(Get("HUGGING_FACE_HUB_TOKEN")) is string legacy)
                (token, source) = (legacy, "HUGGING_FACE_HUB_TOKEN");
            if (token is null && File.Exists(tokenPath))
            {
                try
                {
                    token = CleanToken(File.ReadAllText(tokenPath));
                    source = token is null ? null : tokenPath;
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    throw new GraloraException("HubTokenUnreadable", GraloraErrorKind.IOFailure,
                        $"Could not read the Hugging Face token file '{tokenPath}': {ex.Message}. Fix its permissions, or set HF_TOKEN instead.", tokenPath, ex);
                }
            }

            return new HubSettings
            {
                Endpoint = NormalizeEndpoint(Get("HF_ENDPOINT") ?? DefaultEndpoint, "HF_ENDPOINT"),
                HomeDirectory = home,
                CacheDirectory = cache,
                TokenPath = tokenPath,
                Token = token,
                TokenSource = source,
                Offline = IsTrue(Get("HF_HUB_OFFLINE") ?? Get("TRANSFORMERS_OFFLINE")),
                MetadataTimeout = Seconds(Get("HF_HUB_ETAG_TIMEOUT"), "HF_HUB_ETAG_TIMEOUT"),
                DownloadTimeout = Seconds(Get("HF_HUB_DOWNLOAD_TIMEOUT"), "HF_HUB_DOWNLOAD_TIMEOUT"),
            };
        }

        /// <summary>huggingface_hub's truth values: 1, ON, YES, TRUE in any case.</summary>
        internal static bool IsTrue(string? value) =>
            value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

        static string? CleanToken(string? token)
        {
            string? t = token?.Trim();
            return string.IsNullOrEmpty(t) ? null : t;
        }

        static TimeSpan Seconds(string? value, string name)
        {
            if (value is null) return DefaultTimeout;
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 && s <= int.MaxValue / 1000)
                return TimeSpan.FromSeconds(s);
            throw new GraloraException("InvalidHubSetting", GraloraErrorKind.InvalidArgument,
                $"{name}='{value}' is not a valid timeout: give a positive number of seconds, or unset it for the default of {DefaultTimeout.TotalSeconds} s.", name);
        }

        internal static string NormalizeEndpoint(string? value, string name)
        {
            string trimmed = (value ?? "").Trim().TrimEnd('/');
            if (!Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
                throw new GraloraException("InvalidHubEndpoint", GraloraErrorKind.InvalidArgument,
                    $"{name}='{value}' is not a valid Hub endpoint: give an absolute http(s) URL such as {DefaultEndpoint}, or unset it for the default.", value);
            return trimmed;
        }

        static Dictionary<string, string?> ProcessEnvironment()
        {
            var result = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
                result[(string)e.Key] = e.Value as string;
            return result;
        }

        // Records print every property: keep the token out of logs and error records.
        bool PrintMembers(StringBuilder builder)
        {
            builder.Append("Endpoint = ").Append(Endpoint)
                .Append(", HomeDirectory = ").Append(HomeDirectory)
                .Append(", CacheDirectory = ").Append(CacheDirectory)
                .Append(", Token = ").Append(Token is null ? "(none)" : "(set from " + TokenSource + ")")
                .Append(", Offline = ").Append(Offline)
                .Append(", MetadataTimeout = ").Append(MetadataTimeout)
                .Append(", DownloadTimeout = ").Append(DownloadTimeout);
            return true;
        }
    }
}
