namespace Mistral.Merge.Cuda;

/// <summary>
/// cos/sin tables [positions, D/2] for rotary embeddings, computed the way HF MistralRotaryEmbedding does in
/// float32: inv_freq[i] = 1 / theta^((2i)/D) (exponent and power in f32), angle = f32(pos) · inv_freq[i]
/// (one f32 product), then f32 cos/sin.
/// </summary>
public static class RopeTables
{
    public static (float[] Cos, float[] Sin) Build(int positions, int headDim, double theta)
    {
        if (headDim % 2 != 0) throw new MergeException($"head_dim {headDim} is odd: rotary embeddings need an even head dimension");
        int half = headDim / 2;
        var invFreq = new float[half];
        for (int i = 0; i < half; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            invFreq[i] = 1f / MathF.Pow((float)theta, exponent);
        }
        var cos = new float[(long)positions * half];
        var sin = new float[(long)positions * half];
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < half; i++)
            {
                float angle = p * invFreq[i];
                cos[(long)p * half + i] = MathF.Cos(angle);
                sin[(long)p * half + i] = MathF.Sin(angle);
            }
        return (cos, sin);
    }
}
