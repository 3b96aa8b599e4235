using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats;

namespace KvmTyped.Translation;

/// <summary>Reads of virtual memory: translate, then read the physical bytes, page run by page run.</summary>
internal static class AddressSpaceExtensions
{
    /// <summary>Reads destination.Length bytes at a virtual address of <paramref name="space"/>, backed by
    /// <paramref name="memory"/>.</summary>
    /// <returns>False with the reason when a byte cannot be translated or read.</returns>
    public static bool TryReadVirtual(this IAddressSpace space, IPhysicalMemory memory, ulong virtualAddress,
        Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(memory);
        if (destination.Length > 0 && virtualAddress + (ulong)destination.Length - 1 < virtualAddress)
        {
            failure = $"cannot read {destination.Length} bytes at 0x{virtualAddress:x}: the read wraps past the top of the address space";
            return false;
        }
        while (!destination.IsEmpty)
        {
            if (!space.TryTranslate(virtualAddress, out var physical, out var contiguous, out failure))
                return false;
            var chunk = contiguous < (ulong)destination.Length ? (int)contiguous : destination.Length;
            if (chunk <= 0)
                chunk = 1;
            if (!memory.TryRead(physical, destination[..chunk], out failure))
            {
                failure = $"cannot read 0x{virtualAddress:x} (physical 0x{physical:x}): {failure}";
                return false;
            }
            destination = destination[chunk..];
            virtualAddress += (ulong)chunk;
        }
        failure = null;
        return true;
    }

    /// <summary>Reads exactly destination.Length bytes at a virtual address or throws <see cref="KvmReadException"/>.</summary>
    public static void ReadVirtual(this IAddressSpace space, IPhysicalMemory memory, ulong virtualAddress, Span<byte> destination)
    {
        if (!space.TryReadVirtual(memory, virtualAddress, destination, out var failure))
            throw new KvmReadException(virtualAddress, failure);
    }
}
