using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace GraLoRA.PowerShell.Init
{
    /// <summary>
    /// Load context for GraLoRA.Core and everything it needs (TorchSharp, libtorch), kept apart
    /// from PowerShell's own assemblies. Native libraries are served from the same folder,
    /// because pwsh ignores deps.json and would not look under runtimes/.
    /// </summary>
    internal sealed class GraLoRALoadContext : AssemblyLoadContext
    {
        public static readonly string DependencyDirectory = Path.Combine(
            Path.GetDirectoryName(typeof(GraLoRALoadContext).Assembly.Location)!, "dependencies");

        public static readonly GraLoRALoadContext Instance = new();

        GraLoRALoadContext() : base("GraLoRA", isCollectible: false) { }

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            string path = Path.Combine(DependencyDirectory, assemblyName.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }

        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
        {
            // What Core's loader already loaded (LibTorchSharp, and libtorch from GRALORA_LIBTORCH) is the one copy.
            var loaded = GraLoRA.Native.TorchNativeLoader.LoadedHandle(unmanagedDllName);
            if (loaded != IntPtr.Zero) return loaded;
            foreach (var candidate in new[] { unmanagedDllName, "lib" + unmanagedDllName + ".so", unmanagedDllName + ".so" })
            {
                string path = Path.Combine(DependencyDirectory, candidate);
                if (File.Exists(path)) return LoadUnmanagedDllFromPath(path);
            }
            return IntPtr.Zero;
        }
    }

    /// <summary>
    /// Sends GraLoRA.Core, and only it, from PowerShell's default context into
    /// <see cref="GraLoRALoadContext"/>; the context then serves Core's own dependencies.
    /// </summary>
    public sealed class ModuleInitAndCleanup : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        static bool _registered;
        static readonly object Gate = new();

        // Runs when the assembly loads, before PowerShell reflects over cmdlet attributes that name Core types.
#pragma warning disable CA2255 // a binary module is exactly the library case this rule exempts by design
        [ModuleInitializer]
#pragma warning restore CA2255
        internal static void Register()
        {
            lock (Gate)
            {
                if (_registered) return;
                AssemblyLoadContext.Default.Resolving += ResolveCore;
                _registered = true;
            }
        }

        /// <inheritdoc />
        public void OnImport() => Register();

        /// <inheritdoc />
        public void OnRemove(PSModuleInfo psModuleInfo)
        {
            lock (Gate)
            {
                AssemblyLoadContext.Default.Resolving -= ResolveCore;
                _registered = false;
            }
        }

        static Assembly? ResolveCore(AssemblyLoadContext context, AssemblyName name)
            => name.Name == "GraLoRA.Core" ? GraLoRALoadContext.Instance.LoadFromAssemblyName(name) : null;
    }
}
