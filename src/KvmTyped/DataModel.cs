namespace KvmTyped;

/// <summary>The C data model of a kernel: the widths of <c>long</c> and pointers.</summary>
public enum DataModel
{
    /// <summary>int, long and pointers are 32 bits (System V i386).</summary>
    ILP32 = 32,

    /// <summary>int is 32 bits, long and pointers are 64 bits (System V x86-64).</summary>
    LP64 = 64,
}

/// <summary>Helpers on <see cref="DataModel"/>.</summary>
public static class DataModelExtensions
{
    /// <summary>The size of a pointer (and of <c>long</c>) in bytes under this model.</summary>
    public static int PointerSize(this DataModel model) => model == DataModel.LP64 ? 8 : 4;

    /// <summary>"32-bit" or "64-bit", as kvm_open's messages say it.</summary>
    public static string BitsWord(this DataModel model) => model == DataModel.LP64 ? "64-bit" : "32-bit";
}
