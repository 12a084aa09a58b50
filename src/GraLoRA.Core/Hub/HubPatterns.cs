using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace GraLoRA.Hub
{
    /// <summary>
    /// huggingface_hub's allow/ignore filtering: Python <c>fnmatch.fnmatchcase</c> globs (case-sensitive;
    /// '*' also crosses '/'; '?', '[abc]', '[!abc]'), '\' read as '/', and a pattern ending in '/' means the whole folder.
    /// </summary>
    internal sealed class HubPatterns
    {
        readonly Regex[]? allow;
        readonly Regex[]? ignore;

        public HubPatterns(IReadOnlyList<string>? allowPatterns, IReadOnlyList<string>? ignorePatterns = null)
        {
            allow = allowPatterns?.Select(Compile).ToArray();
            ignore = ignorePatterns?.Select(Compile).ToArray();
        }

        public bool Matches(string path)
        {
            path = path.Replace('\\', '/');
            if (allow is not null && !allow.Any(r => r.IsMatch(path))) return false;
            return ignore is null || !ignore.Any(r => r.IsMatch(path));
        }

        static Regex Compile(string pattern)
        {
            if (pattern is null)
                throw new GraloraException("InvalidHubPattern", GraloraErrorKind.InvalidArgument, "A file pattern is null: give globs such as '*.json' or '*.safetensors'.");
            pattern = pattern.Replace('\\', '/');
            if (pattern.EndsWith('/')) pattern += "*";
            return new Regex(Translate(pattern), RegexOptions.CultureInvariant | RegexOptions.Singleline);
        }

        /// <summary>Python's fnmatch.translate, for the features it has.</summary>
        internal static string Translate(string pattern)
        {
            var sb = new StringBuilder("^");
            int i = 0, n = pattern.Length;
            while (i < n)
            {
                char c = pattern[i++];
                if (c == '*')
                {
                    while (i < n && pattern[i] == '*') i++;
                    sb.Append(".*");
                }
                else if (c == '?') sb.Append('.');
                else if (c == '[')
                {
                    int j = i;
                    if (j < n && pattern[j] == '!') j++;
                    if (j < n && pattern[j] == ']') j++;
                    while (j < n && pattern[j] != ']') j++;
                    if (j >= n) { sb.Append("\\["); continue; }
                    string body = pattern.Substring(i, j - i);
                    i = j + 1;
                    bool negate = body.StartsWith('!');
                    if (negate) body = body.Substring(1);
                    if (body.Length == 0) { sb.Append(negate ? "." : "(?!)"); continue; }
                    var cls = new StringBuilder();
                    foreach (char ch in body)
                        cls.Append(ch is '\\' or '^' or '[' or ']' ? "\\" + ch : ch.ToString());
                    sb.Append('[').Append(negate ? "^" : "").Append(cls).Append(']');
                }
                else sb.Append(Regex.Escape(c.ToString()));
            }
            return sb.Append("\\z").ToString();
        }
    }
}
