using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Translation;

/// <summary>A virtual address space: "translate V, or say why not".</summary>
public interface IAddressSpace
{
    /// <summary>Translates a virtual address.</summary>
    /// <param name="virtualAddress">The address to translate.</param>
    /// <param name="physicalAddress">The physical address that backs it.</param>
    /// <param name="contiguous">How many bytes from <paramref name="virtualAddress"/> on are backed contiguously
    /// by the same mapping (at least 1; typically up to the end of the page).</param>
    /// <param name="failure">Why not, as "cannot translate 0x…: &lt;reason&gt;".</param>
    bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous,
        [NotNullWhen(false)] out string? failure);
}
