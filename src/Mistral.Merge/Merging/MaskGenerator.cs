using System.Runtime.CompilerServices;
using System.Text;

namespace Mistral.Merge.Merging;

/// <summary>
/// The portable seeded generator behind DARE and DELLA masks: the same recipe and seed give the
/// same model on every machine and thread count, because each element's draw depends only on
/// (seed, output tensor name, model ordinal, flat index).
/// </summary>
public static class MaskGenerator
{
    public const ulong Golden = 0x9E3779B97F4A7C15;
    private const double TwoPow24 = 16777216.0;

    /// <summary>splitmix64's finaliser.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix64(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }
    }

    public static ulong Fnv1a64(string s)
    {
        unchecked
        {
            ulong h = 0xcbf29ce484222325;
            foreach (var b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 0x100000001b3; }
            return h;
        }
    }

    /// <summary>The stream key for one model of one output tensor.</summary>
    public static ulong Key(ulong seed, string outputName, int ordinal)
    {
        unchecked
        {
            ulong k0 = Mix64(seed ^ Fnv1a64(outputName));
            return Mix64(k0 + (ulong)(ordinal + 1) * Golden);
        }
    }

    /// <summary>The 24-bit draw for flat index <paramref name="i"/> (u = value / 2^24).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Draw24(ulong key, long i) => unchecked((uint)(Mix64(key + (ulong)(i + 1) * Golden) >> 40));

    /// <summary>Keep when u &lt; p, in double precision.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(ulong key, long i, double p) => Draw24(key, i) / TwoPow24 < p;
}
