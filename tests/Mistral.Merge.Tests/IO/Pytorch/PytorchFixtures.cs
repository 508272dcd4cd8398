using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>
/// The committed torch.save outputs of tests/pytorch-bin/generate.py (real PyTorch 1.13) and the reference
/// safetensors the same script wrote from the same tensors.
/// </summary>
internal static class PytorchFixtures
{
    public static readonly string Root = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "IO", "PytorchBin");

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The marker file a hostile fixture's payload would create if it were ever run.</summary>
    public static string Marker(string payload) => "/tmp/mistral-merge-pickle-pwned-" + payload;

    /// <summary>Copies a fixture folder (for tests that add files to it), with the built-in tokenizer when asked.</summary>
    public static string CopyFolder(string fixture, string to, bool tokenizer = false)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(PathOf(fixture))) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        if (tokenizer)
            foreach (var (name, bytes) in Mistral.Merge.Cli.BuiltinTokenizer.Files(448)) File.WriteAllBytes(Path.Combine(to, name), bytes);
        return to;
    }

    /// <summary>Every tensor of <paramref name="file"/>: name → (dtype, shape, bytes).</summary>
    public static Dictionary<string, (DType DType, string Shape, byte[] Bytes)> Contents(SafetensorsFile file) =>
        file.Tensors.ToDictionary(t => t.Name, t => (t.DType, t.ShapeText, file.GetBytes(t).ToArray()));
}
