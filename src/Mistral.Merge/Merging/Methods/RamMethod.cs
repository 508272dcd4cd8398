namespace Mistral.Merge.Merging.Methods;

/// <summary>ram: the task vectors averaged over the models that change each element (see <see cref="RamFamilyMethod"/>).</summary>
public sealed class RamMethod() : RamFamilyMethod("ram", plus: false);
