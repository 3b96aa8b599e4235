using System.Diagnostics.CodeAnalysis;
using KvmTyped.Translation;

namespace KvmTyped.Linux;

/// <summary>The user memory of one process, through its own page tables (mm->pgd): pages mapped in the dump are read
/// from physical memory, swapped-out pages from the swapfile given at open. On an image opened O_RDWR it can be
/// written too, into the corefile bytes that back each page.</summary>
public sealed class ProcessMemory
{
    private const int UserPageSize = 4096;
    private readonly Kvm _kvm;
    private readonly IAddressSpace _space;

    private ProcessMemory(Kvm kvm, KernelTask task, IAddressSpace space)
    {
        _kvm = kvm;
        Task = task;
        _space = space;
    }

    /// <summary>The process (its task) this memory belongs to.</summary>
    public KernelTask Task { get; }

    /// <summary>The address space whose root is <paramref name="pgd"/> (a kernel virtual address, as mm->pgd holds it).</summary>
    internal static ProcessMemory Create(Kvm kvm, KernelTask task, ulong pgd)
    {
        if (kvm.Layout.PagingLevels is null)
            throw new KvmException("the image's paging layout is unknown: cannot read a process's memory");
        if (!kvm.TryTranslate(pgd, out var pgdPhysical, out var why))
            throw new KvmReadException(pgd, $"pid {task.Pid}: mm->pgd 0x{pgd:x}: {why}");
        var space = kvm.Layout.CreateProcessAddressSpace(pgdPhysical)
            ?? throw new KvmException("the image's paging layout is unknown: cannot read a process's memory");
        return new ProcessMemory(kvm, task, space);
    }

    /// <summary>Reads <paramref name="destination"/> from <paramref name="address"/>, stopping at the first byte that
    /// cannot be read.</summary>
    /// <param name="address">The first user virtual address.</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="read">How many bytes were read before a failure (all of them on success).</param>
    /// <param name="failure">Why the read stopped.</param>
    public bool TryRead(ulong address, Span<byte> destination, out int read, [NotNullWhen(false)] out string? failure)
    {
        var ok = UserMemory.TryRead(_kvm.Physical, _kvm.Swap, _space, address, destination, out read, out failure);
        failure = ok ? null : failure ?? "unreadable";
        return ok;
    }

    /// <summary>Reads <paramref name="destination"/> from <paramref name="address"/>.</summary>
    /// <exception cref="KvmReadException">A byte cannot be read: the message says which and why.</exception>
    public void Read(ulong address, Span<byte> destination)
    {
        if (!TryRead(address, destination, out var read, out var failure))
            throw new KvmReadException(address + (ulong)read, $"pid {Task.Pid}: {failure}");
    }

    /// <summary>Writes <paramref name="source"/> at <paramref name="address"/> into the corefile bytes its page tables
    /// give (O_RDWR only). Every page is translated and checked before any byte is written; a swapped-out page fails
    /// the write (the swapfile is never written).</summary>
    /// <exception cref="KvmWriteException">The image is read-only, or a page is not present, swapped out, or not backed
    /// by the dump; nothing was written.</exception>
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!_kvm.IsWritable)
            throw new KvmWriteException(address, $"{_kvm.CorePath} is open read-only");
        var pieces = new List<(ulong Pa, int Offset, int Length)>();
        var done = 0;
        Span<byte> probe = stackalloc byte[1];
        while (done < source.Length)
        {
            var va = address + (ulong)done;
            if (done > 0 && va == 0)
                throw new KvmWriteException(va, "the write runs past the top of the address space");
            if (!_space.TryTranslate(va, out var pa, out var contiguous, out var failure, out var swapped))
            {
                if (swapped is { } entry)
                    failure = $"{UserMemory.Describe(va, entry.Type, entry.Offset)}: a swapped-out page is not written (the swapfile is open read-only)";
                throw new KvmWriteException(va, $"pid {Task.Pid}: {failure}");
            }
            var n = (int)Math.Min((ulong)(source.Length - done), Math.Max(1, Math.Min(contiguous, UserPageSize - (va & (UserPageSize - 1)))));
            if (!_kvm.Physical.TryRead(pa, probe, out failure) || !_kvm.Physical.TryRead(pa + (ulong)n - 1, probe, out failure))
                throw new KvmWriteException(va, $"pid {Task.Pid}: 0x{va:x} (physical 0x{pa:x}): {failure}");
            pieces.Add((pa, done, n));
            done += n;
        }
        _kvm.WritePhysicalPieces(pieces, source);
    }
}
