using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Formats;

/// <summary>A source of physical memory: "read N bytes at physical address P, or say why not".</summary>
/// <remarks>Implementations are thread-safe for reads. They never load a whole file into memory.</remarks>
internal interface IPhysicalMemory : IDisposable
{
    /// <summary>A short name of the format, e.g. "ELF vmcore", "kdump-compressed", "raw".</summary>
    string FormatName { get; }

    /// <summary>The physical ranges this source can hold, in address order (a range may still have holes,
    /// e.g. pages excluded from a kdump).</summary>
    IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <summary>The parts of <see cref="Ranges"/> whose bytes the source stores: not zero-filled by the format, not
    /// past the end of a truncated file. A search for data (the kernel's banner) looks only here, so a header that
    /// claims terabytes the file cannot back costs nothing. By default all of <see cref="Ranges"/>.</summary>
    IReadOnlyList<PhysicalRange> StoredRanges => Ranges;

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="address"/>.</summary>
    /// <returns>False, with the reason in <paramref name="failure"/>, when any byte is not available;
    /// <paramref name="destination"/> is then in an unspecified state.</returns>
    bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure);

    /// <summary>Whether <see cref="Write"/> may be called (the source was opened read-write).</summary>
    bool IsWritable { get; }

    /// <summary>Writes <paramref name="source"/> at <paramref name="address"/>, into exactly the file bytes that back it.</summary>
    /// <exception cref="KvmWriteException">A byte is not backed by the file, or the source is read-only.</exception>
    void Write(ulong address, ReadOnlySpan<byte> source);
}

/// <summary>A range of physical addresses, [Start, Start + Length).</summary>
/// <param name="Start">First physical address.</param>
/// <param name="Length">Length in bytes.</param>
/// <param name="Origin">Where the bytes come from (a file name, a segment), for `info`.</param>
internal readonly record struct PhysicalRange(ulong Start, ulong Length, string Origin)
{
    /// <summary>One past the last address.</summary>
    public ulong End => Start + Length;
}

/// <summary>Throwing forms of <see cref="IPhysicalMemory"/> reads.</summary>
internal static class PhysicalMemoryExtensions
{
    /// <summary>Reads exactly destination.Length bytes or throws <see cref="KvmReadException"/>.</summary>
    public static void Read(this IPhysicalMemory memory, ulong address, Span<byte> destination)
    {
        if (!memory.TryRead(address, destination, out var failure))
            throw new KvmReadException(address, failure);
    }
}

/// <summary>A source that can say, without writing, whether a write would land whole.</summary>
internal interface IWriteCheck
{
    /// <summary>Null when <paramref name="length"/> bytes at <paramref name="address"/> can be written; else why not.</summary>
    string? WriteFailure(ulong address, ulong length);
}
