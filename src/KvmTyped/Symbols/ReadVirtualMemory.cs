using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Symbols;

/// <summary>Reads <paramref name="destination"/>.Length bytes of kernel memory at the running virtual address
/// <paramref name="address"/>, or says why not (not mapped, excluded from the dump, …). <c>Kvm.TryReadVirtual</c>
/// has this shape; tests pass a flat buffer.</summary>
/// <param name="address">Kernel virtual address, as the running kernel sees it (KASLR applied).</param>
/// <param name="destination">Where the bytes go; filled completely on success.</param>
/// <param name="failure">On failure, why the bytes could not be read.</param>
/// <returns>Whether every byte was read.</returns>
internal delegate bool ReadVirtualMemory(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure);
