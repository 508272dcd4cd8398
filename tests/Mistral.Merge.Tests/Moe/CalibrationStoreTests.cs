using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class CalibrationStoreTests
{
    [Fact]
    public void LayersRoundTripThroughAnAnonymousTemporaryFile()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.Path);
        const int layers = 3, tokens = 5, hidden = 4;
        using (var store = new CalibrationStore(layers, tokens, hidden, tmp.Path))
        {
            Assert.Empty(Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories)); // unlinked at once
            // written in two windows per layer, layers interleaved as the forward pass does
            for (int l = 0; l < layers; l++) store.Write(l, 0, Values(l, 0, 3 * hidden));
            for (int l = 0; l < layers; l++) store.Write(l, 3, Values(l, 3 * hidden, 2 * hidden));
            for (int l = layers - 1; l >= 0; l--) Assert.Equal(Values(l, 0, tokens * hidden), store.MoeInputs(l));
        }
        Assert.Empty(Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void TooManyTokensForOneLayerIsAOneLineError()
    {
        var e = Assert.Throws<MergeException>(() => new CalibrationStore(2, int.MaxValue / 2, 4096));
        Assert.StartsWith($"calibration: {int.MaxValue / 2} tokens × hidden 4096 is too large for one layer", e.Message);
    }

    [Fact]
    public void AMissingTemporaryFolderIsAOneLineError()
    {
        var e = Assert.Throws<MergeException>(() => new CalibrationStore(1, 2, 2, "/nonexistent/calibration"));
        Assert.StartsWith("calibration: cannot create a temporary file in /nonexistent/calibration", e.Message);
    }

    private static float[] Values(int layer, int start, int count) =>
        Enumerable.Range(start, count).Select(i => layer * 1000f + i + 0.25f).ToArray();
}
