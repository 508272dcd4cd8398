using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.IO;

public class ByteSizeTests
{
    [Theory]
    [InlineData("5000000000", 5_000_000_000L)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("2GB", 2_000_000_000L)]
    [InlineData("5B", 5_000_000_000L)]     // mergekit's default, read as mergekit reads it (billions)
    [InlineData("500M", 500_000_000L)]
    [InlineData("2k", 2_000L)]
    [InlineData("0", ByteSize.NoLimit)]     // mergekit: a limit ≤ 0 is one shard
    [InlineData("1", 1L)]
    [InlineData("1.5GiB", 1_610_612_736L)]
    [InlineData("10KiB", 10_240L)]
    [InlineData("3mib", 3_145_728L)]
    [InlineData(" 2 gb ", 2_000_000_000L)]
    [InlineData("1.5K", 1_500L)]
    [InlineData("1TB", 1_000_000_000_000L)]
    public void Parses(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text));

    [Theory]
    [InlineData("", "--out-shard-size: '' is not a size (examples: 5000000000, 500MB, 2GB)")]
    [InlineData("GB", "--out-shard-size: 'GB' is not a size (examples: 5000000000, 500MB, 2GB)")]
    [InlineData("-5MB", "--out-shard-size: '-5MB' is not a size (examples: 5000000000, 500MB, 2GB)")]
    [InlineData("1.2.3GB", "--out-shard-size: '1.2.3GB' is not a size (examples: 5000000000, 500MB, 2GB)")]
    [InlineData("5XB", "--out-shard-size: unknown unit 'XB' in '5XB' (use K, M, B as mergekit does, KB, MB, GB, TB, or KiB, MiB, GiB)")]
    [InlineData("1e9", "--out-shard-size: unknown unit 'e9' in '1e9' (use K, M, B as mergekit does, KB, MB, GB, TB, or KiB, MiB, GiB)")]
    [InlineData("0MB", "--out-shard-size: '0MB' is out of range (must be at least 1 byte)")]
    [InlineData("0.4", "--out-shard-size: '0.4' is out of range (must be at least 1 byte)")]
    [InlineData("99999999999TB", "--out-shard-size: '99999999999TB' is out of range (must be at least 1 byte)")]
    public void RefusesBadInput(string text, string message)
        => Assert.Equal(message, Assert.Throws<MergeException>(() => ByteSize.Parse(text)).Message);

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(999L, "999 B")]
    [InlineData(1_500L, "1.50 KB")]
    [InlineData(2_269_192_192L, "2.27 GB")]
    [InlineData(14_483_464_192L, "14.5 GB")]
    public void Formats(long bytes, string text) => Assert.Equal(text, ByteSize.Format(bytes));
}
