using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Hub;
using Xunit;

namespace GraLoRA.Tests
{
    public class HubSettingsTests
    {
        static Dictionary<string, string?> Env(string home, params (string Key, string? Value)[] vars)
        {
            var env = new Dictionary<string, string?> { ["HOME"] = home };
            foreach (var (k, v) in vars) env[k] = v;
            return env;
        }

        [Fact]
        public void Defaults_FollowHomeAndXdg()
        {
            using var tmp = new TempDirectory();
            var s = HubSettings.FromEnvironment(Env(tmp.Path));
            Assert.Equal(Path.Combine(tmp.Path, ".cache", "huggingface"), s.HomeDirectory);
            Assert.Equal(Path.Combine(tmp.Path, ".cache", "huggingface", "hub"), s.CacheDirectory);
            Assert.Equal(Path.Combine(tmp.Path, ".cache", "huggingface", "token"), s.TokenPath);
            Assert.Equal("https://huggingface.co", s.Endpoint);
            Assert.Null(s.Token);
            Assert.False(s.Offline);
            Assert.Equal(TimeSpan.FromSeconds(10), s.MetadataTimeout);

            var xdg = HubSettings.FromEnvironment(Env(tmp.Path, ("XDG_CACHE_HOME", tmp.File("xdg"))));
            Assert.Equal(Path.Combine(tmp.Path, "xdg", "huggingface", "hub"), xdg.CacheDirectory);
        }

        [Fact]
        public void HfHome_HfHubCache_AndLegacyVariable_Precedence()
        {
            using var tmp = new TempDirectory();
            var home = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", tmp.File("hf")), ("XDG_CACHE_HOME", tmp.File("xdg"))));
            Assert.Equal(tmp.File("hf"), home.HomeDirectory);
            Assert.Equal(Path.Combine(tmp.Path, "hf", "hub"), home.CacheDirectory);

            var legacy = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", tmp.File("hf")), ("HUGGINGFACE_HUB_CACHE", tmp.File("legacy"))));
            Assert.Equal(tmp.File("legacy"), legacy.CacheDirectory);

            var both = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", tmp.File("hf")), ("HUGGINGFACE_HUB_CACHE", tmp.File("legacy")), ("HF_HUB_CACHE", tmp.File("new"))));
            Assert.Equal(tmp.File("new"), both.CacheDirectory);
            Assert.Equal(tmp.File("hf"), both.HomeDirectory);

            var tilde = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", "~/hfhome")));
            Assert.Equal(Path.Combine(tmp.Path, "hfhome"), tilde.HomeDirectory);

            var empty = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", ""), ("HF_HUB_CACHE", "")));
            Assert.Equal(Path.Combine(tmp.Path, ".cache", "huggingface", "hub"), empty.CacheDirectory);
        }

        [Fact]
        public void Endpoint_TrailingSlashTrimmed_InvalidRejected()
        {
            using var tmp = new TempDirectory();
            Assert.Equal("http://127.0.0.1:8080/mirror", HubSettings.FromEnvironment(Env(tmp.Path, ("HF_ENDPOINT", "http://127.0.0.1:8080/mirror/"))).Endpoint);
            foreach (string bad in new[] { "huggingface.co", "ftp://host", "/relative/path", "http://host/?q=1" })
            {
                var ex = Assert.Throws<GraloraException>(() => HubSettings.FromEnvironment(Env(tmp.Path, ("HF_ENDPOINT", bad))));
                Assert.Equal("InvalidHubEndpoint", ex.ErrorId);
                Assert.Contains("HF_ENDPOINT", ex.Message);
                Assert.Contains(bad, ex.Message);
            }
            var settings = HubSettings.FromEnvironment(Env(tmp.Path));
            Assert.Equal("InvalidHubEndpoint", Assert.Throws<GraloraException>(() => settings with { Endpoint = "not a url" }).ErrorId);
            Assert.Equal("http://localhost:1", (settings with { Endpoint = "http://localhost:1/" }).Endpoint);
        }

        [Theory]
        [InlineData("1", true), InlineData("true", true), InlineData("YES", true), InlineData("on", true), InlineData("True", true)]
        [InlineData("0", false), InlineData("false", false), InlineData("no", false), InlineData("", false)]
        public void Offline_TruthValues(string value, bool expected)
        {
            using var tmp = new TempDirectory();
            Assert.Equal(expected, HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HUB_OFFLINE", value))).Offline);
        }

        [Fact]
        public void TransformersOffline_AlsoCounts() =>
            Assert.True(HubSettings.FromEnvironment(Env(Path.GetTempPath(), ("TRANSFORMERS_OFFLINE", "1"))).Offline);

        [Fact]
        public void Token_FromVariable_ThenTokenFile_NeverPrinted()
        {
            using var tmp = new TempDirectory();
            Directory.CreateDirectory(tmp.File("hf"));
            File.WriteAllText(Path.Combine(tmp.File("hf"), "token"), "hf_fromfile_secret\n");

            var fromFile = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", tmp.File("hf"))));
            Assert.Equal("hf_fromfile_secret", fromFile.Token);
            Assert.Equal(Path.Combine(tmp.File("hf"), "token"), fromFile.TokenSource);

            var fromVar = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HOME", tmp.File("hf")), ("HF_TOKEN", " hf_fromvar_secret ")));
            Assert.Equal("hf_fromvar_secret", fromVar.Token);
            Assert.Equal("HF_TOKEN", fromVar.TokenSource);

            File.WriteAllText(tmp.File("elsewhere"), "hf_tokenpath_secret");
            Assert.Equal("hf_tokenpath_secret", HubSettings.FromEnvironment(Env(tmp.Path, ("HF_TOKEN_PATH", tmp.File("elsewhere")))).Token);
            Assert.Equal("hf_legacy_secret", HubSettings.FromEnvironment(Env(tmp.Path, ("HUGGING_FACE_HUB_TOKEN", "hf_legacy_secret"))).Token);

            Assert.DoesNotContain("secret", fromVar.ToString());
            Assert.DoesNotContain("secret", fromFile.ToString());
            Assert.Contains("HF_TOKEN", fromVar.ToString());
        }

        [Fact]
        public void Timeouts_FromVariables_InvalidRejected()
        {
            using var tmp = new TempDirectory();
            var s = HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HUB_ETAG_TIMEOUT", "2.5"), ("HF_HUB_DOWNLOAD_TIMEOUT", "30")));
            Assert.Equal(TimeSpan.FromSeconds(2.5), s.MetadataTimeout);
            Assert.Equal(TimeSpan.FromSeconds(30), s.DownloadTimeout);
            var ex = Assert.Throws<GraloraException>(() => HubSettings.FromEnvironment(Env(tmp.Path, ("HF_HUB_DOWNLOAD_TIMEOUT", "soon"))));
            Assert.Equal("InvalidHubSetting", ex.ErrorId);
            Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", ex.Message);
        }

        [Theory]
        [InlineData("gpt2"), InlineData("org/name"), InlineData("Qwen/Qwen2.5-0.5B"), InlineData("a_b/c.d-e")]
        public void RepoId_Valid(string repoId) =>
            Assert.Equal("models--" + repoId.Replace("/", "--"), HubCache.RepoFolderName(repoId));

        [Theory]
        [InlineData(""), InlineData("a/b/c"), InlineData("-bad"), InlineData("bad-"), InlineData("org/.name"), InlineData("a--b"),
         InlineData("a..b"), InlineData("x.git"), InlineData("with space"), InlineData("../etc"), InlineData("/abs")]
        public void RepoId_Invalid(string repoId)
        {
            var ex = Assert.Throws<GraloraException>(() => HubCache.RepoFolderName(repoId));
            Assert.Equal("InvalidRepoId", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains($"'{repoId}'", ex.Message);
        }

        [Theory]
        [InlineData("*.json", "config.json", true), InlineData("*.json", "sub/dir/x.json", true), InlineData("*.json", "config.JSON", false)]
        [InlineData("tokenizer*", "tokenizer.json", true), InlineData("tokenizer*", "tokenizer_config.json", true), InlineData("tokenizer*", "my_tokenizer.json", false)]
        [InlineData("sub/", "sub/dir/file.txt", true), InlineData("sub/*", "sub/dir/file.txt", true), InlineData("sub", "sub/dir/file.txt", false)]
        [InlineData("model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors", true)]
        [InlineData("[!a]*.bin", "pytorch_model.bin", true), InlineData("[!p]*.bin", "pytorch_model.bin", false), InlineData("[ab].txt", "b.txt", true)]
        [InlineData("a[.txt", "a[.txt", true), InlineData("a+b.txt", "a+b.txt", true), InlineData("*.txt", "a.txt\n", false)]
        [InlineData("sub\\dir\\*", "sub/dir/file.txt", true)]
        public void Patterns_AreFnmatchcase(string pattern, string path, bool expected) =>
            Assert.Equal(expected, new HubPatterns(new[] { pattern }).Matches(path));

        [Fact]
        public void Patterns_IgnoreWinsOverAllow()
        {
            var p = new HubPatterns(new[] { "*.json" }, new[] { "tokenizer*" });
            Assert.True(p.Matches("config.json"));
            Assert.False(p.Matches("tokenizer.json"));
            Assert.False(p.Matches("model.safetensors"));
            Assert.True(new HubPatterns(null, null).Matches("anything"));
        }

        [Fact]
        public void EtagNormalisation()
        {
            Assert.Equal("abc", HubNames.NormalizeEtag("\"abc\""));
            Assert.Equal("abc", HubNames.NormalizeEtag("W/\"abc\""));
            Assert.Equal("abc", HubNames.NormalizeEtag("abc"));
            Assert.Null(HubNames.NormalizeEtag(null));
        }
    }
}
