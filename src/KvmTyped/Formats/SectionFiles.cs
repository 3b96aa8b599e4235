using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.IO;

namespace KvmTyped.Formats;

/// <summary>A reference, in a core, to a file holding one more memory section (docs/formats/section-files.md).</summary>
/// <param name="FileName">Plain file name, looked up in the corefile's directory.</param>
/// <param name="PhysicalAddress">Physical address of the section's first byte.</param>
/// <param name="VirtualAddress">Kernel virtual address of its first byte, or 0 when the section is physical only.</param>
/// <param name="Size">Size in bytes.</param>
internal sealed record SectionFileReference(string FileName, ulong PhysicalAddress, ulong VirtualAddress, ulong Size)
{
    /// <summary>ELF note owner name of a section reference.</summary>
    public const string NoteName = "KVMTYPED";

    /// <summary>ELF note type of a section reference.</summary>
    public const uint NoteType = 0x4b530001;

    /// <summary>Longest file name accepted.</summary>
    public const int MaxNameLength = 255;

    /// <summary>Most section references a core may carry.</summary>
    public const int MaxReferences = 4096;

    /// <summary>Whether the section was found (set at open).</summary>
    public bool Present { get; init; }

    /// <summary>Decodes a note descriptor; throws <see cref="KvmFormatException"/> when malformed or unsafe.</summary>
    internal static SectionFileReference Decode(ReadOnlySpan<byte> desc, bool bigEndian, string path, long offset)
    {
        if (desc.Length < 25)
            throw new KvmFormatException(path, offset, $"section reference note is {desc.Length} bytes, shorter than 25");
        var r = new Elf.FieldReader(desc, bigEndian);
        var paddr = r.U64(0);
        var vaddr = r.U64(8);
        var size = r.U64(16);
        var nameBytes = desc[24..];
        var nul = nameBytes.IndexOf((byte)0);
        if (nul < 0)
            throw new KvmFormatException(path, offset, "section reference file name is not NUL-terminated");
        var name = Encoding.UTF8.GetString(nameBytes[..nul]);
        if (name.Length is 0 or > MaxNameLength)
            throw new KvmFormatException(path, offset, $"section reference file name has length {name.Length}, not 1..{MaxNameLength}");
        if (name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal) || name is "." or ".." || name.Contains("..", StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
            throw new KvmFormatException(path, offset, $"section reference \"{name}\" is not a plain file name (path separators and '..' are refused)");
        if (size == 0 || paddr + size < paddr || (vaddr != 0 && vaddr + size < vaddr))
            throw new KvmFormatException(path, offset, $"section reference \"{name}\" has an empty or wrapping range (paddr 0x{paddr:x}, size 0x{size:x})");
        return new SectionFileReference(name, paddr, vaddr, size);
    }

    /// <summary>Encodes this reference as a note descriptor (little-endian, as x86 cores are).</summary>
    public byte[] Encode()
    {
        var name = Encoding.UTF8.GetBytes(FileName);
        var desc = new byte[24 + name.Length + 1];
        BinaryPrimitives.WriteUInt64LittleEndian(desc, PhysicalAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(desc.AsSpan(8), VirtualAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(desc.AsSpan(16), Size);
        name.CopyTo(desc, 24);
        return desc;
    }
}

/// <summary>A core plus the section files it names: reads go to the section that holds an address, else to the core.
/// A missing section (KVM_NSRCH) fails its reads naming the file.</summary>
internal sealed class SectionedPhysicalMemory : IPhysicalMemory
{
    private readonly IPhysicalMemory _core;
    private readonly Section[] _sections;

    public SectionedPhysicalMemory(IPhysicalMemory core, IReadOnlyList<(SectionFileReference Ref, RandomAccessFile? File)> sections)
    {
        _core = core;
        _sections = [.. sections.Select(s => new Section(s.Ref, s.File)).OrderBy(s => s.Ref.PhysicalAddress)];
        var ranges = new List<PhysicalRange>(core.Ranges);
        ranges.AddRange(_sections.Where(s => s.File is not null).Select(s => new PhysicalRange(s.Ref.PhysicalAddress, s.Ref.Size, s.Ref.FileName)));
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        Ranges = ranges;
        var stored = new List<PhysicalRange>(core.StoredRanges);
        stored.AddRange(_sections.Where(s => s.File is not null).Select(s => new PhysicalRange(s.Ref.PhysicalAddress, s.Ref.Size, s.Ref.FileName)));
        stored.Sort((a, b) => a.Start.CompareTo(b.Start));
        StoredRanges = stored;
    }

    public IReadOnlyList<PhysicalRange> StoredRanges { get; }

    public string FormatName => _core.FormatName + " + section files";

    /// <summary>The core the section files extend (its notes are the dump's).</summary>
    public IPhysicalMemory Core => _core;

    public IReadOnlyList<PhysicalRange> Ranges { get; }

    public bool IsWritable => _core.IsWritable;

    private Section? Find(ulong address)
    {
        foreach (var s in _sections)
        {
            if (address >= s.Ref.PhysicalAddress && address - s.Ref.PhysicalAddress < s.Ref.Size)
                return s;
        }
        return null;
    }

    /// <summary>Where the core's part ends: the start of the next section above an address.</summary>
    private ulong NextSectionStart(ulong address)
    {
        foreach (var s in _sections)
        {
            if (s.Ref.PhysicalAddress > address)
                return s.Ref.PhysicalAddress;
        }
        return ulong.MaxValue;
    }

    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        while (!destination.IsEmpty)
        {
            var s = Find(address);
            int n;
            if (s is null)
            {
                n = (int)Math.Min((ulong)destination.Length, NextSectionStart(address) - address);
                if (!_core.TryRead(address, destination[..n], out failure))
                    return false;
            }
            else
            {
                var delta = address - s.Ref.PhysicalAddress;
                n = (int)Math.Min((ulong)destination.Length, s.Ref.Size - delta);
                if (s.File is null)
                {
                    failure = $"physical address 0x{address:x} is in section file {s.Ref.FileName}, which is missing";
                    return false;
                }
                if (!s.File.Contains((long)delta, n))
                {
                    failure = $"section file {s.File.Path} is shorter than its section (0x{s.Ref.Size:x} bytes)";
                    return false;
                }
                if (!s.File.TryCopy((long)delta, destination[..n]))
                {
                    failure = $"{s.File.Path} is closed";
                    return false;
                }
            }
            destination = destination[n..];
            address += (ulong)n;
        }
        failure = null;
        return true;
    }

    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (!IsWritable)
            throw new KvmWriteException(address, "the core is open read-only");
        // Check every piece first, so a failed write changes nothing.
        var (a, left) = (address, (ulong)source.Length);
        while (left > 0)
        {
            var s = Find(a);
            ulong n;
            if (s is null)
            {
                n = Math.Min(left, NextSectionStart(a) - a);
                if (_core is IWriteCheck check && check.WriteFailure(a, n) is { } why)
                    throw new KvmWriteException(a, why);
            }
            else
            {
                n = Math.Min(left, s.Ref.Size - (a - s.Ref.PhysicalAddress));
                if (s.File is null)
                    throw new KvmWriteException(a, $"physical address 0x{a:x} is in section file {s.Ref.FileName}, which is missing");
                if (!s.File.Contains((long)(a - s.Ref.PhysicalAddress), (long)n))
                    throw new KvmWriteException(a, $"section file {s.File.Path} is shorter than its section");
            }
            a += n;
            left -= n;
        }
        while (!source.IsEmpty)
        {
            var s = Find(address);
            int n;
            if (s is null)
            {
                n = (int)Math.Min((ulong)source.Length, NextSectionStart(address) - address);
                _core.Write(address, source[..n]);
            }
            else
            {
                var delta = address - s.Ref.PhysicalAddress;
                n = (int)Math.Min((ulong)source.Length, s.Ref.Size - delta);
                if (s.File is null)
                    throw new KvmWriteException(address, $"physical address 0x{address:x} is in section file {s.Ref.FileName}, which is missing");
                if (!s.File.Contains((long)delta, n))
                    throw new KvmWriteException(address, $"section file {s.File.Path} is shorter than its section");
                s.File.Write((long)delta, source[..n]);
            }
            source = source[n..];
            address += (ulong)n;
        }
    }

    public void Dispose()
    {
        foreach (var s in _sections)
            s.File?.Dispose();
        _core.Dispose();
    }

    private sealed record Section(SectionFileReference Ref, RandomAccessFile? File);
}
