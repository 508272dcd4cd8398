using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Mistral.Merge.Cuda.Native;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda;

/// <summary>
/// NVRTC compilation of the embedded kernels for one GPU architecture, cached on disk as a CUBIN:
/// ~/.cache/mistral-merge/kernels/&lt;sha256(source, arch, NVRTC version, options)&gt;.cubin
/// ($MISTRAL_MERGE_KERNEL_CACHE or $XDG_CACHE_HOME/mistral-merge/kernels when set). A cache that cannot be
/// written is not an error: the kernels are then compiled again next time.
/// </summary>
public static unsafe class KernelCache
{
    /// <summary>Compile options besides the architecture. No fast-math: exact IEEE division/sqrt are relied upon.</summary>
    public static readonly string[] BaseOptions = ["--std=c++17"];

    public static string Directory()
    {
        var over = Environment.GetEnvironmentVariable("MISTRAL_MERGE_KERNEL_CACHE");
        if (!string.IsNullOrWhiteSpace(over)) return over;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrWhiteSpace(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "mistral-merge", "kernels");
    }

    /// <summary>Lower-case hex SHA-256 over everything that changes the binary.</summary>
    public static string Key(string source, string arch, (int Major, int Minor) nvrtcVersion, IEnumerable<string>? options = null)
    {
        var sb = new StringBuilder();
        sb.Append("src\n").Append(source).Append("\narch\n").Append(arch)
          .Append("\nnvrtc\n").Append(nvrtcVersion.Major).Append('.').Append(nvrtcVersion.Minor)
          .Append("\nopts\n").Append(string.Join(' ', options ?? BaseOptions));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public static string PathFor(string key) => Path.Combine(Directory(), key + ".cubin");

    /// <summary>The CUBIN for this device: from the cache, or compiled (and cached).</summary>
    internal static byte[] GetOrCompile(CudaContext ctx, out bool fromCache)
    {
        string source = KernelSources.Combined();
        var version = ctx.Nvrtc.Version();
        string key = Key(source, ctx.Arch, version);
        string path = PathFor(key);
        try
        {
            if (File.Exists(path)) { fromCache = true; return File.ReadAllBytes(path); }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }

        byte[] cubin = Compile(ctx.Nvrtc, source, ctx.Arch, version);
        fromCache = false;
        TryWrite(path, cubin);
        return cubin;
    }

    /// <summary>Deletes this device's cache entry (used when the driver rejects a cached CUBIN).</summary>
    internal static void Forget(CudaContext ctx)
    {
        try { File.Delete(PathFor(Key(KernelSources.Combined(), ctx.Arch, ctx.Nvrtc.Version()))); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void TryWrite(string path, byte[] bytes)
    {
        try
        {
            System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            string tmp = path + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, path, overwrite: true);   // atomic: concurrent processes never read half a file
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    internal static byte[] Compile(NvrtcApi nvrtc, string source, string arch, (int Major, int Minor) version)
    {
        nint prog;
        byte[] src = Encoding.UTF8.GetBytes(source + "\0");
        byte[] name = Encoding.UTF8.GetBytes(KernelSources.ProgramName + "\0");
        fixed (byte* s = src) fixed (byte* n = name)
            nvrtc.Check(nvrtc.nvrtcCreateProgram(&prog, s, n, 0, null, null), "nvrtcCreateProgram");
        try
        {
            var opts = new List<string>(BaseOptions) { "--gpu-architecture=" + arch };
            var handles = new List<GCHandle>();
            var ptrs = new byte*[opts.Count];
            try
            {
                for (int i = 0; i < opts.Count; i++)
                {
                    var h = GCHandle.Alloc(Encoding.UTF8.GetBytes(opts[i] + "\0"), GCHandleType.Pinned);
                    handles.Add(h);
                    ptrs[i] = (byte*)h.AddrOfPinnedObject();
                }
                int r;
                fixed (byte** p = ptrs) r = nvrtc.nvrtcCompileProgram(prog, opts.Count, p);
                if (r != NVRTC_SUCCESS)
                {
                    string log = ProgramLog(nvrtc, prog);
                    string first = log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
                    throw new MergeException(CudaErrors.FormatNvrtc(r, "nvrtcCompileProgram",
                        $"compiling the kernels for {arch} with NVRTC {version.Major}.{version.Minor} failed" + (first.Length > 0 ? ": " + first : "")));
                }
            }
            finally { foreach (var h in handles) h.Free(); }

            nuint size;
            nvrtc.Check(nvrtc.nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
            if (size == 0) throw new MergeException($"NVRTC produced no CUBIN for {arch}");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) nvrtc.Check(nvrtc.nvrtcGetCUBIN(prog, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally { nvrtc.nvrtcDestroyProgram(&prog); }
    }

    private static string ProgramLog(NvrtcApi nvrtc, nint prog)
    {
        nuint size;
        if (nvrtc.nvrtcGetProgramLogSize(prog, &size) != NVRTC_SUCCESS || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* b = buf) if (nvrtc.nvrtcGetProgramLog(prog, b) != NVRTC_SUCCESS) return "";
        return Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
    }
}
