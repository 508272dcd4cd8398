namespace Mistral.Merge.Inference;

/// <summary>The bias of a linear layer (HF <c>nn.Linear(bias=True)</c>): y[r, c] += b[c] in float32, after the product.</summary>
internal static unsafe class Bias
{
    /// <summary>Adds <paramref name="bias"/> to each of <paramref name="rows"/> rows of width bias.Length; nothing when it is null.</summary>
    public static void AddRows(float* y, float[]? bias, int rows)
    {
        if (bias == null) return;
        int cols = bias.Length;
        for (int r = 0; r < rows; r++)
        {
            float* row = y + (long)r * cols;
            for (int c = 0; c < cols; c++) row[c] += bias[c];
        }
    }
}
