namespace KvmTyped.Symbols;

/// <summary>How a kernel's kallsyms table stores symbol addresses (kernel/kallsyms.c, kallsyms_sym_address).</summary>
internal enum KallsymsAddressMode
{
    /// <summary><c>kallsyms_addresses</c>: one pointer per symbol (kernels without CONFIG_KALLSYMS_BASE_RELATIVE).</summary>
    Absolute,

    /// <summary><c>kallsyms_offsets</c>: address = <c>kallsyms_relative_base</c> + the offset read as unsigned 32 bits.</summary>
    BaseRelative,

    /// <summary><c>kallsyms_offsets</c> with CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP kernels): an offset
    /// ≥ 0 is the absolute address itself (the zero-based per-CPU symbols); a negative one means
    /// <c>kallsyms_relative_base</c> − 1 − offset.</summary>
    AbsolutePerCpu,
}
