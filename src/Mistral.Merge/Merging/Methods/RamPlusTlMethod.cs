namespace Mistral.Merge.Merging.Methods;

/// <summary>ramplus_tl: ram with each model's lone changes scaled by λᵢ from its shared/unique ratio (see <see cref="RamFamilyMethod"/>).</summary>
public sealed class RamPlusTlMethod() : RamFamilyMethod("ramplus_tl", plus: true);
