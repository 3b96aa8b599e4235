namespace KvmTyped.Translation;

/// <summary>Which half of an aarch64 virtual address space a set of tables translates.</summary>
internal enum Arm64AddressHalf
{
    /// <summary>TTBR0: user addresses, the bits above the VA size all zero (a process's <c>mm-&gt;pgd</c>).</summary>
    User,

    /// <summary>TTBR1: kernel addresses, the bits above the VA size all ones (<c>swapper_pg_dir</c>).</summary>
    Kernel,
}
