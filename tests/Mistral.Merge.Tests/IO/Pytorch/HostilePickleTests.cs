using Mistral.Merge.IO.Pickle;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>
/// Malicious checkpoints: torch.save outputs whose pickle calls a dangerous function, and hand-made pickles that
/// try the opcodes and resource attacks torch.save never writes. Each is one line naming the file (and the global),
/// and nothing is ever run: the payloads would create marker files, which must not appear.
/// </summary>
public class HostilePickleTests
{
    [Theory]
    [InlineData("os-system", "posix.system")]
    [InlineData("builtins-eval", "__builtin__.eval")]    // protocol 2 writes Python 2's names (fix_imports),
    [InlineData("builtins-exec", "__builtin__.exec")]    // which Python's unpickler maps back to builtins.eval,
    [InlineData("subprocess-popen", "commands.Popen")]   // builtins.exec and subprocess.Popen
    [InlineData("unknown-module", "__main__.Unknown")]
    public void ATorchSavedPayloadIsRefusedByNameAndNeverRuns(string payload, string global)
    {
        File.Delete(PytorchFixtures.Marker(payload));
        foreach (var format in new[] { "zip", "legacy" })
        {
            var path = PytorchFixtures.PathOf("hostile", $"{payload}-{format}.bin");
            var e = Assert.Throws<MergeException>(() => PytorchCheckpoint.Open(path));
            Assert.StartsWith($"{path}: pickle", e.Message);
            Assert.Contains($": refused: the pickle names '{global}' (opcode GLOBAL at byte ", e.Message);
            Assert.EndsWith("), which is not on the allow-list of a weights-only checkpoint; nothing was run (see docs/checkpoints.md)", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Assert.False(File.Exists(PytorchFixtures.Marker(payload)));
    }

    [Fact]
    public void TheExactRefusalNamesTheFileThePickleAndTheByte()
    {
        var path = PytorchFixtures.PathOf("hostile", "os-system-zip.bin");
        var e = Assert.Throws<MergeException>(() => PytorchCheckpoint.Open(path));
        Assert.Equal($"{path}: pickle os-system-zip/data.pkl: refused: the pickle names 'posix.system' (opcode GLOBAL at byte 200 of the pickle), which is not on the allow-list of a weights-only checkpoint; nothing was run (see docs/checkpoints.md)", e.Message);
    }

    [Fact]
    public void InspectOfAFolderWithAHostileBinIsAOneLineErrorAndRunsNothing()
    {
        using var tmp = new TempDir();
        File.Delete(PytorchFixtures.Marker("os-system"));
        File.Copy(PytorchFixtures.PathOf("hostile", "os-system-legacy.bin"), tmp["pytorch_model.bin"]);
        var r = CliRunner.Run("inspect", tmp.Path);
        CliRunner.AssertOneLineError(r, "refused: the pickle names 'posix.system'");
        Assert.False(File.Exists(PytorchFixtures.Marker("os-system")));
    }

    private static MergeException Refusal(byte[] legacyPickle, bool last = false)
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["x.bin"], last ? [.. RawPickles.LegacyHeader(), .. legacyPickle] : RawPickles.Legacy(legacyPickle));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<MergeException>(() => PytorchCheckpoint.Open(tmp["x.bin"]));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        Assert.StartsWith(tmp["x.bin"] + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData("\u0080\u0002cos\nsystem\nX\u0002\u0000\u0000\u0000ls\u0085R.", "refused: the pickle names 'os.system' (opcode GLOBAL at byte 2 of the pickle)")]
    [InlineData("\u0080\u0002\u008c\u0008builtins\u008c\u0004eval\u0093X\u0001\u0000\u0000\u00001\u0085R.", "refused: the pickle names 'builtins.eval' (opcode STACK_GLOBAL at byte 18 of the pickle)")]
    [InlineData("\u0080\u0002(X\u0002\u0000\u0000\u0000lsisubprocess\nPopen\n.", "refused: the pickle names 'subprocess.Popen' (opcode INST at byte 10 of the pickle)")]
    [InlineData("\u0080\u0002(ctorch\nFloatStorage\no.", "refused opcode OBJ")]
    [InlineData("\u0080\u0002\u0082\u0001.", "refused opcode EXT")]
    [InlineData("\u0080\u0002}X\u0001\u0000\u0000\u0000a\u0085R.", "REDUCE calls a dict, which is not an allow-listed function; nothing was run")]
    [InlineData("\u0080\u0002ctorch\nFloatStorage\n)R.", "'torch.FloatStorage' is allowed as a value but not as a function to call")]
    [InlineData("\u0080\u0002ccollections\nOrderedDict\nX\u0001\u0000\u0000\u0000a\u0085R.", "collections.OrderedDict called with 1 argument(s)")]
    [InlineData("\u0080\u0002ctorch._utils\n_rebuild_tensor_v2\n(K\u0000K\u0000))\u0089}tR.", "_rebuild_tensor_v2: storage is 0, not a persistent storage reference")]
    [InlineData("\u0080\u0002(X\u0001\u0000\u0000\u0000xq\u0000tQ.", "persistent id a tuple of 1 is not a ('storage', type, key, location, size) tuple")]
    [InlineData("\u0080\u0002h\u0005.", "memo entry 5 read before it was written")]
    [InlineData("\u0080\u0002X\u00ff\u00ff\u00ff\u00ff.", "BINUNICODE of 4294967295 bytes (at most 16777216)")]
    [InlineData("\u0080\u0002\u008d\u0000\u0001\u0000\u0000\u0000\u0000\u0000\u0000abc", "the pickle ends inside a value (256 bytes needed, 9 left; truncated)")]
    [InlineData("\u0080\u0002I1\n.", "unsupported pickle opcode 0x49 ('I')")]
    [InlineData("\u0080\u0006N.", "pickle protocol 6 is not supported")]
    [InlineData("\u0080\u0002NN.", "STOP with 2 values on the stack")]
    [InlineData("\u0080\u00020.", "stack underflow")]
    [InlineData("\u0080\u0002K\u0001.", "the checkpoint holds 1, not a state dict")]
    [InlineData("\u0080\u0002}K\u0001K\u0002s.", "the state dict has the key 1, which is not a string")]
    [InlineData("\u0080\u0002}X\u0001\u0000\u0000\u0000wK\u0002s.", "tensor 'w' is 2, not a tensor")]
    [InlineData("\u0080\u0002ctorch._utils\n_other\n)R.", "refused: the pickle names 'torch._utils._other' (opcode GLOBAL at byte 2 of the pickle)")]
    [InlineData("\u0080\u0002ctorch\nload\nX\u0001\u0000\u0000\u0000a\u0085R.", "refused: the pickle names 'torch.load' (opcode GLOBAL at byte 2 of the pickle)")]
    [InlineData("\u0080\u0002cbuiltins\ngetattr\nctorch\nFloatStorage\nX\u0001\u0000\u0000\u0000a\u0086R.", "refused: the pickle names 'builtins.getattr'")]
    [InlineData("\u0080\u0002ccollections\nOrderedDict\n}\u0085R.", "collections.OrderedDict called with 1 argument(s)")]
    [InlineData("\u0080\u0002K\u0001K\u0002\u0093.", "STACK_GLOBAL of values that are not strings")]
    [InlineData("\u0080\u0002ccollections\nOrderedDict\n)R}X\u000a\u0000\u0000\u0000__reduce__ctorch\nload\nsb.", "refused: the pickle names 'torch.load' (opcode GLOBAL at byte 45 of the pickle)")]
    [InlineData("\u0080\u0002j\u00ff\u00ff\u00ff\u007f.", "memo entry 2147483647 read before it was written")]
    [InlineData("\u0080\u0004\u008d\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u007f.", "BINUNICODE8 of 9223372036854775807 bytes (at most 16777216)")]
    [InlineData("\u0080\u0004\u008e\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff.", "BINBYTES8 of -1 bytes (at most 16777216)")]
    [InlineData("\u0080\u0002\u008b\u00ff\u00ff\u00ff\u00ff.", "LONG4 of -1 bytes (at most 64)")]
    [InlineData("\u0080\u0004\u0095\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u007fN.", "frame of 9223372036854775807 bytes runs past the end")]
    public void AHandMadeAttackIsOneLineNamingTheFile(string ops, string fragment)
    {
        var e = Refusal(RawPickles.Ops(ops));
        Assert.True(e.Message.Contains(fragment, StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public void APickleCutShortIsTruncated()
    {
        var e = Refusal(RawPickles.Ops("\u0080\u0002]X\u0001\u0000\u0000\u0000a"), last: true);
        Assert.Contains("the pickle ends without a STOP (truncated)", e.Message);
    }

    [Fact]
    public void DeepNestingIsRefusedAtTheMarkLimit()
    {
        var e = Refusal([.. RawPickles.Ops("\u0080\u0002"), .. Enumerable.Repeat((byte)'(', 100_000), .. RawPickles.Ops(".")]);
        Assert.Contains($"nesting deeper than {RestrictedUnpickler.MaxMarkDepth} MARKs", e.Message);
    }

    [Fact]
    public void NestingAMillionDeepIsReadWithoutRecursion()
    {
        // a tuple in a tuple in a tuple... a million deep (TUPLE1 needs no MARK): nothing recurses, so this is just not a state dict
        var e = Refusal([.. RawPickles.Ops("\u0080\u0002N"), .. Enumerable.Repeat((byte)0x85, 1_000_000), (byte)'.']);
        Assert.Contains("the checkpoint holds a tuple of 1, not a state dict", e.Message);
    }

    [Fact]
    public void AMemoReferenceBombStaysLinear()
    {
        // billion laughs: each level a list of 10 references to the level below, 200 levels = 10^200 leaves if expanded
        var ops = new List<byte>(RawPickles.Ops("\u0080\u0002]q\u0000"));
        for (int level = 0; level < 200; level++)
        {
            ops.Add((byte)'(');
            for (int k = 0; k < 10; k++) ops.AddRange("h\u0000"u8);
            ops.AddRange("lq\u0000"u8); // LIST, BINPUT 0 (replaces the level below)
            ops.AddRange("0"u8);
        }
        ops.AddRange("h\u0000"u8);
        ops.AddRange("0."u8);
        var e = Refusal([.. ops]);
        Assert.Contains("the checkpoint holds a list, not a state dict", e.Message);
    }

    [Fact]
    public void MillionsOfValuesHitTheValueLimit()
    {
        var ops = new byte[2 + RestrictedUnpickler.MaxValues + 10];
        ops[0] = 0x80; ops[1] = 2;
        Array.Fill(ops, (byte)')', 2, ops.Length - 3); // EMPTY_TUPLE, each one value on the stack
        ops[^1] = (byte)'.';
        var e = Refusal(ops);
        Assert.Contains($"more than {RestrictedUnpickler.MaxValues} values (a pickle bomb or not a checkpoint)", e.Message);
    }
}
