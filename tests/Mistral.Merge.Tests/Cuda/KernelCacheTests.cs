using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

public class KernelCacheTests
{
    [Fact]
    public void KeyIsASha256HexOverSourceArchAndNvrtcVersion()
    {
        string k = KernelCache.Key("src", "sm_90", (12, 4));
        Assert.Equal(64, k.Length);
        Assert.Matches("^[0-9a-f]{64}$", k);
        Assert.Equal(k, KernelCache.Key("src", "sm_90", (12, 4)));
        Assert.NotEqual(k, KernelCache.Key("src ", "sm_90", (12, 4)));
        Assert.NotEqual(k, KernelCache.Key("src", "sm_80", (12, 4)));
        Assert.NotEqual(k, KernelCache.Key("src", "sm_90", (12, 8)));
        Assert.NotEqual(k, KernelCache.Key("src", "sm_90", (13, 4)));
        Assert.NotEqual(k, KernelCache.Key("src", "sm_90", (12, 4), ["--std=c++17", "-lineinfo"]));
    }

    [Fact]
    public void KeyOfTheRealSourcesIsStableAndMatchesAnIndependentHash()
    {
        string src = KernelSources.Combined();
        string expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes("src\n" + src + "\narch\nsm_90\nnvrtc\n12.4\nopts\n--std=c++17")));
        Assert.Equal(expected, KernelCache.Key(src, "sm_90", (12, 4)));
    }

    [Fact]
    public void CachePathIsUnderTheUserCacheFolder()
    {
        string? over = Environment.GetEnvironmentVariable("MISTRAL_MERGE_KERNEL_CACHE");
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string key = new('a', 64);
        string expected =
            !string.IsNullOrWhiteSpace(over) ? Path.Combine(over, key + ".cubin")
            : !string.IsNullOrWhiteSpace(xdg) ? Path.Combine(xdg, "mistral-merge", "kernels", key + ".cubin")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "mistral-merge", "kernels", key + ".cubin");
        Assert.Equal(expected, KernelCache.PathFor(key));
    }
}
