using System.Diagnostics.CodeAnalysis;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using KvmTyped.Linux;
using KvmTyped.Formats;

namespace KvmTyped.Tests.TestSupport;

/// <summary>An ELF core's physical memory and VMCOREINFO, through the library's own ELF reader, for tests that
/// exercise the translation layer without the rest of the open.</summary>
internal sealed class TestElfCoreMemory : IPhysicalMemory
{
    private readonly ElfCoreMemory _core;

    public TestElfCoreMemory(string path)
    {
        Path = path;
        var image = ElfImage.Parse(RandomAccessFile.Open(path, writable: false));
        foreach (var note in image.ReadNotes())
        {
            if (note.Name == "VMCOREINFO")
                VmcoreInfo = KvmTyped.Formats.VmcoreInfo.Parse(image.File.Unchecked(note.DescOffset, note.DescSize));
        }
        _core = new ElfCoreMemory(image);
    }

    public string Path { get; }

    public VmcoreInfo? VmcoreInfo { get; }

    public string FormatName => _core.FormatName;

    public IReadOnlyList<PhysicalRange> Ranges => _core.Ranges;

    public bool IsWritable => false;

    public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure) =>
        _core.TryRead(address, destination, out failure);

    public void Write(ulong address, ReadOnlySpan<byte> source) => throw new KvmReadException(address, "read-only test reader");

    public void Dispose() => _core.Dispose();
}
