namespace KvmTyped;

/// <summary>A range of physical memory a dump holds, [Start, End).</summary>
/// <param name="Start">First physical address.</param>
/// <param name="End">One past the last.</param>
/// <param name="Origin">Where the bytes come from (a file name, a segment).</param>
public sealed record MemoryRange(ulong Start, ulong End, string Origin)
{
    /// <summary>Length in bytes.</summary>
    public ulong Length => End - Start;
}

/// <summary>What a kdump-compressed corefile says about itself.</summary>
/// <param name="HeaderVersion">The header's version (1-6).</param>
/// <param name="Codecs">How its pages are stored, of "raw", "zlib", "lzo", "snappy", "zstd".</param>
/// <param name="Flattened">A makedumpfile flattened stream (-F, QEMU's kdump formats).</param>
/// <param name="Incomplete">Marked incomplete by the writer, or truncated (<see cref="Kvm.Truncation"/>): some pages are not in the file.</param>
public sealed record KdumpInfo(int HeaderVersion, IReadOnlyList<string> Codecs, bool Flattened, bool Incomplete);

/// <summary>The corefile, in format-neutral terms.</summary>
/// <param name="FormatName">The format, e.g. "ELF64 core", "kdump-compressed (flattened)".</param>
/// <param name="Ranges">The physical ranges it can hold, in address order.</param>
/// <param name="Kdump">Details of a kdump-compressed file, else null.</param>
public sealed record DumpInfo(string FormatName, IReadOnlyList<MemoryRange> Ranges, KdumpInfo? Kdump);

/// <summary>A section file a core names (docs/formats/section-files.md).</summary>
/// <param name="FileName">The file's name, beside the core.</param>
/// <param name="PhysicalAddress">Where its section starts.</param>
/// <param name="Size">The section's size.</param>
/// <param name="Present">Whether the file was found and opened.</param>
public sealed record SectionFile(string FileName, ulong PhysicalAddress, ulong Size, bool Present);
