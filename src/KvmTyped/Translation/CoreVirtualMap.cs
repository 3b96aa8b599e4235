using System.Diagnostics.CodeAnalysis;
using KvmTyped.Translation;

namespace KvmTyped.Translation;

/// <summary>Kernel virtual addresses as an ELF core's PT_LOADs (and section references) state them:
/// kdump's vmcore and makedumpfile -E give kernel virtual addresses beside physical ones.
/// Falls back to another space for addresses no segment covers.</summary>
internal sealed class CoreVirtualMap : IAddressSpace
{
    private readonly (ulong Virt, ulong Phys, ulong Size)[] _maps;
    private readonly ulong[] _starts;

    // Largest segment end among segments 0..i: a scan back from the last segment starting at or below an address
    // stops where no earlier segment reaches it.
    private readonly ulong[] _maxEnd;
    private readonly IAddressSpace? _fallback;

    public CoreVirtualMap(IEnumerable<(ulong Virt, ulong Phys, ulong Size)> maps, IAddressSpace? fallback)
    {
        _maps = [.. maps.Where(m => m.Size > 0 && m.Virt + m.Size > m.Virt).OrderBy(m => m.Virt)];
        _starts = [.. _maps.Select(m => m.Virt)];
        _maxEnd = new ulong[_maps.Length];
        for (var i = 0; i < _maps.Length; i++)
            _maxEnd[i] = Math.Max(i > 0 ? _maxEnd[i - 1] : 0, _maps[i].Virt + _maps[i].Size);
        _fallback = fallback;
    }

    public int Count => _maps.Length;

    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong contiguous, [NotNullWhen(false)] out string? failure)
    {
        var i = Array.BinarySearch(_starts, virtualAddress);
        if (i < 0)
            i = ~i - 1;
        for (var j = i; j >= 0 && _maxEnd[j] > virtualAddress; j--)
        {
            var m = _maps[j];
            if (virtualAddress >= m.Virt && virtualAddress - m.Virt < m.Size)
            {
                physicalAddress = m.Phys + (virtualAddress - m.Virt);
                contiguous = m.Size - (virtualAddress - m.Virt);
                failure = null;
                return true;
            }
        }
        if (_fallback is not null)
            return _fallback.TryTranslate(virtualAddress, out physicalAddress, out contiguous, out failure);
        physicalAddress = contiguous = 0;
        failure = $"cannot translate 0x{virtualAddress:x}: no segment of the core maps it";
        return false;
    }
}
