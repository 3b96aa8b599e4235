using System.Globalization;
using KvmTyped.Formats;
using KvmTyped.Translation;

namespace KvmTyped.Linux;

/// <summary>Reads a process's memory through its own page tables, page by page: a mapped page from physical memory,
/// a swapped-out page from the swap area given at open (the only one, swap type 0).</summary>
internal static class UserMemory
{
    private const int UserPageSize = 4096;

    /// <summary>Reads <paramref name="destination"/> from <paramref name="virtualAddress"/> of
    /// <paramref name="processSpace"/>, stopping at the first byte that cannot be read.</summary>
    /// <param name="kvm">The opened image: its physical memory and swap area.</param>
    /// <param name="processSpace">The process's address space (<see cref="KernelTasks"/>' GetAddressSpace).</param>
    /// <param name="virtualAddress">The first address to read.</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="read">The bytes read before a failure (all of them on success).</param>
    /// <param name="failure">Why the read stopped.</param>
    public static bool TryRead(Kvm kvm, IAddressSpace processSpace, ulong virtualAddress, Span<byte> destination,
        out int read, out string? failure)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        return TryRead(kvm.Physical, kvm.Swap, processSpace, virtualAddress, destination, out read, out failure);
    }

    /// <summary>As <see cref="TryRead(Kvm, IAddressSpace, ulong, Span{byte}, out int, out string?)"/>, from a
    /// physical memory and a swap area (null when none was given).</summary>
    public static bool TryRead(IPhysicalMemory physical, SwapFile? swap, IAddressSpace processSpace, ulong virtualAddress,
        Span<byte> destination, out int read, out string? failure)
    {
        ArgumentNullException.ThrowIfNull(physical);
        ArgumentNullException.ThrowIfNull(processSpace);
        read = 0;
        failure = null;
        while (read < destination.Length)
        {
            var va = virtualAddress + (ulong)read;
            if (read > 0 && va == 0)
            {
                failure = "the read runs past the top of the address space";
                return false;
            }
            var inPage = (int)(va & (UserPageSize - 1));
            if (processSpace.TryTranslate(va, out var pa, out var contiguous, out var why, out var swapped))
            {
                var n = (int)Math.Min((ulong)(destination.Length - read), Math.Max(1, Math.Min(contiguous, (ulong)(UserPageSize - inPage))));
                if (!physical.TryRead(pa, destination.Slice(read, n), out why))
                {
                    failure = $"0x{va:x} (physical 0x{pa:x}): {why}";
                    return false;
                }
                read += n;
                continue;
            }
            if (swapped is not { } entry)
            {
                failure = why;
                return false;
            }
            var m = Math.Min(destination.Length - read, UserPageSize - inPage);
            if (!TryReadSwapped(swap, va, entry.Type, entry.Offset, inPage, destination.Slice(read, m), out failure))
                return false;
            read += m;
        }
        return true;
    }

    /// <summary>The failure text of a swapped-out page.</summary>
    public static string Describe(ulong virtualAddress, int type, ulong offset) =>
        $"0x{virtualAddress:x} is swapped out (swap type {type.ToString(CultureInfo.InvariantCulture)}, offset 0x{offset:x})";

    private static bool TryReadSwapped(SwapFile? swap, ulong va, int type, ulong offset, int inPage, Span<byte> destination,
        out string? failure)
    {
        if (swap is null)
        {
            failure = $"{Describe(va, type, offset)} and no swapfile was given";
            return false;
        }
        if (type != 0)
        {
            failure = $"{Describe(va, type, offset)}, but only one swap area (type 0) was given: {swap.Path}";
            return false;
        }
        if (swap.PageSize != UserPageSize)
        {
            failure = $"{Describe(va, type, offset)}, but {swap.Path} has {swap.PageSize}-byte pages, not {UserPageSize}";
            return false;
        }
        if (!swap.TryRead(offset, inPage, destination, out var why))
        {
            failure = $"{Describe(va, type, offset)}: {why}";
            return false;
        }
        failure = null;
        return true;
    }
}
