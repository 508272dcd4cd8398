using System.Reflection;
using System.Runtime.Loader;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>
/// Nothing NVIDIA may load at startup. Statics are per load context, so the check runs the library and the CLI
/// in a fresh, collectible AssemblyLoadContext: there, building the CLI, printing help and selecting
/// --device cpu must leave CudaLibraries untouched; only an explicit "auto" probes the driver.
/// </summary>
public class LazyLoadingTests
{
    private sealed class IsolatedContext(string dir) : AssemblyLoadContext("cuda-lazy-test", isCollectible: true)
    {
        protected override Assembly? Load(AssemblyName name) =>
            name.Name is "Mistral.Merge" or "mistral-merge" ? LoadFromAssemblyPath(Path.Combine(dir, name.Name + ".dll")) : null;
    }

    private static bool Flag(Assembly lib, string property) =>
        (bool)lib.GetType("Mistral.Merge.Cuda.Native.CudaLibraries", true)!.GetProperty(property)!.GetValue(null)!;

    [Fact]
    public void StartupHelpAndCpuSelectionLoadNoNativeLibrary()
    {
        string dir = Path.GetDirectoryName(typeof(Mistral.Merge.Cuda.CudaRuntime).Assembly.Location)!;
        var alc = new IsolatedContext(dir);
        try
        {
            var lib = alc.LoadFromAssemblyName(new AssemblyName("Mistral.Merge"));
            var cli = alc.LoadFromAssemblyName(new AssemblyName("mistral-merge"));
            Assert.NotSame(typeof(Mistral.Merge.Cuda.CudaRuntime).Assembly, lib);

            var program = cli.GetType("Mistral.Merge.Cli.Program", true)!;
            program.GetMethod("BuildRoot")!.Invoke(null, null);
            var run = program.GetMethod("RunInProcess")!;
            int code = (int)run.Invoke(null, [new[] { "--help" }, new StringWriter(), new StringWriter()])!;
            Assert.Equal(0, code);

            var selector = lib.GetType("Mistral.Merge.Cuda.DeviceSelector", true)!;
            var resolve = selector.GetMethods().Single(m => m.Name == "Resolve" && m.GetParameters().Length == 1);
            resolve.Invoke(null, ["cpu"]);
            // Touch the types that hold the kernel list and constants: their static initialisers must stay managed-only.
            _ = lib.GetType("Mistral.Merge.Cuda.CudaKernels", true)!.GetField("EntryPoints")!.GetValue(null);

            Assert.False(Flag(lib, "DriverLoadAttempted"));
            Assert.False(Flag(lib, "NvrtcLoadAttempted"));
            Assert.False(Flag(lib, "CublasLoadAttempted"));

            var auto = resolve.Invoke(null, ["auto"])!;   // never throws, whatever the machine
            (auto.GetType().GetProperty("Context")!.GetValue(auto) as IDisposable)?.Dispose();
            Assert.True(Flag(lib, "DriverLoadAttempted"));
        }
        finally { alc.Unload(); }
    }
}
