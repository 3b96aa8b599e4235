using System.Buffers.Binary;
using System.Text;
using KvmTyped.Btf;

namespace KvmTyped.Tests.Btf;

/// <summary>Files: raw BTF, and ELF files (32/64-bit, either byte order) carrying a .BTF section, built in code.</summary>
public sealed class BtfReaderTests : IDisposable
{
    private readonly List<string> _files = [];

    public void Dispose()
    {
        foreach (var f in _files)
            File.Delete(f);
    }

    private string Write(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"kvmtyped-btf-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, bytes);
        _files.Add(path);
        return path;
    }

    private static byte[] SampleBtf(bool bigEndian, out int structId)
    {
        var b = new BtfBuilder();
        int l = b.Int("long int", 4, encoding: 1);
        structId = b.Struct("thing", 8, ("n", l, 0, 0), ("p", b.Ptr(l), 32, 0));
        return b.Build(bigEndian);
    }

    /// <summary>A minimal ELF: header, section contents, names, section header table (section 0 null, names last).</summary>
    internal static byte[] Elf(bool is64, bool bigEndian, (string Name, uint Type, byte[] Data)[] sections,
        bool extendedNumbering = false, Action<byte[], Func<int, int>>? patchSection = null)
    {
        int ehsize = is64 ? 64 : 52, shentsize = is64 ? 64 : 40;
        var names = new MemoryStream();
        names.WriteByte(0);
        var all = sections.Append((Name: ".shstrtab", Type: 3u, Data: Array.Empty<byte>())).ToArray();
        var nameOffsets = new List<uint>();
        foreach (var s in all)
        {
            nameOffsets.Add((uint)names.Length);
            names.Write(Encoding.ASCII.GetBytes(s.Name + "\0"));
        }
        all[^1] = (".shstrtab", 3u, names.ToArray());
        var offsets = new List<long>();
        long at = ehsize;
        foreach (var s in all)
        {
            offsets.Add(at);
            at += s.Data.Length;
        }
        long shoff = (at + 7) & ~7L;
        int shnum = all.Length + 1;
        var bytes = new byte[shoff + (long)shnum * shentsize];
        void U16(long o, int v) { if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan((int)o), (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan((int)o), (ushort)v); }
        void U32(long o, long v) { if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan((int)o), (uint)v); else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)o), (uint)v); }
        void U64(long o, long v) { if (bigEndian) BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan((int)o), (ulong)v); else BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)o), (ulong)v); }
        void Word(long o, long v) { if (is64) U64(o, v); else U32(o, v); }
        "\u007fELF"u8.CopyTo(bytes);
        bytes[4] = (byte)(is64 ? 2 : 1);
        bytes[5] = (byte)(bigEndian ? 2 : 1);
        bytes[6] = 1;
        U16(16, 2);
        U16(18, is64 ? 62 : 3);
        U32(20, 1);
        Word(is64 ? 0x28 : 0x20, shoff);
        U16(is64 ? 0x34 : 0x28, ehsize);
        U16(is64 ? 0x3A : 0x2E, shentsize);
        U16(is64 ? 0x3C : 0x30, extendedNumbering ? 0 : shnum);
        U16(is64 ? 0x3E : 0x32, extendedNumbering ? 0xffff : shnum - 1);
        if (extendedNumbering)
        {
            Word(shoff + (is64 ? 32 : 20), shnum);
            U32(shoff + (is64 ? 40 : 24), shnum - 1);
        }
        for (int i = 0; i < all.Length; i++)
        {
            all[i].Data.CopyTo(bytes, offsets[i]);
            long h = shoff + (long)(i + 1) * shentsize;
            U32(h, nameOffsets[i]);
            U32(h + 4, all[i].Type);
            Word(h + (is64 ? 24 : 16), offsets[i]);
            Word(h + (is64 ? 32 : 20), all[i].Data.Length);
        }
        patchSection?.Invoke(bytes, i => (int)(shoff + (long)(i + 1) * shentsize));
        return bytes;
    }

    [Theory]
    [InlineData(true, false, false)]
    [InlineData(false, false, false)]
    [InlineData(true, true, false)]
    [InlineData(false, true, true)]
    [InlineData(true, false, true)]
    public void Reads_the_BTF_section_of_any_ELF_flavour(bool is64, bool bigEndian, bool extendedNumbering)
    {
        var btf = SampleBtf(bigEndian, out int thing);
        var elf = Elf(is64, bigEndian, [(".text", 1, new byte[37]), (".BTF", 1, btf), (".BTF_ids", 1, new byte[8])], extendedNumbering);
        var path = Write(elf);
        var (blob, offset) = BtfReader.ReadBlob(path);
        Assert.Equal(btf, blob);
        Assert.Equal((is64 ? 64 : 52) + 37, offset);
        var t = BtfReader.Load(path);
        Assert.Equal(bigEndian, t.IsBigEndian);
        Assert.Equal(path, t.SourceName);
        Assert.Equal(4, t.PointerSize);
        Assert.Equal(thing, t.Find("thing", BtfKind.Struct));
        Assert.Equal([0L, 4L], t.GetFlattenedMembers(thing).Select(f => f.Offset));
    }

    [Fact]
    public void Raw_files_load_whole_and_errors_carry_file_offsets()
    {
        var btf = SampleBtf(false, out int thing);
        var raw = BtfReader.Load(Write(btf), pointerSize: 8);
        Assert.Equal(8, raw.SizeOf(raw.GetFlattenedMembers(thing)[1].TypeId));

        // Corrupt the kind of type 1 inside an ELF: the message gives the offset in the ELF file.
        var bad = (byte[])btf.Clone();
        bad[24 + 7] = 30;
        var elf = Elf(true, false, [(".text", 1, new byte[100]), (".BTF", 1, bad)]);
        var path = Write(elf);
        var e = Assert.Throws<KvmFormatException>(() => BtfReader.Load(path));
        Assert.Equal(path, e.Path);
        Assert.Equal(64 + 100 + 24, e.Offset);
        Assert.Contains("unknown kind 30", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_ELF_without_BTF_says_how_to_make_some()
    {
        var path = Write(Elf(false, false, [(".text", 1, new byte[16])]));
        var e = Assert.Throws<KvmFormatException>(() => BtfReader.Load(path));
        Assert.Contains("no .BTF section", e.Message, StringComparison.Ordinal);
        Assert.Contains("pahole --btf_encode_detached", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Damaged_ELF_files_are_refused()
    {
        var btf = SampleBtf(false, out _);
        (string, uint, byte[])[] sections = [(".BTF", 1, btf)];

        var path = Write(Elf(true, false, sections, patchSection: (b, h) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(h(0) + 32), 1UL << 40)));
        Assert.Contains(".BTF section", Assert.Throws<KvmFormatException>(() => BtfReader.Load(path)).Message, StringComparison.Ordinal);

        var nobits = Write(Elf(true, false, sections, patchSection: (b, h) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(h(0) + 4), 8)));
        Assert.Contains("SHT_NOBITS", Assert.Throws<KvmFormatException>(() => BtfReader.Load(nobits)).Message, StringComparison.Ordinal);

        var compressed = Write(Elf(false, true, sections, patchSection: (b, h) => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(h(0) + 8), 0x800)));
        Assert.Contains("SHF_COMPRESSED", Assert.Throws<KvmFormatException>(() => BtfReader.Load(compressed)).Message, StringComparison.Ordinal);

        var elf = Elf(true, false, sections);
        var truncated = Write(elf[..(elf.Length - 10)]);
        Assert.Contains("section header table", Assert.Throws<KvmFormatException>(() => BtfReader.Load(truncated)).Message, StringComparison.Ordinal);

        var badIndex = (byte[])elf.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(badIndex.AsSpan(0x3E), 40);
        Assert.Contains("section-name table index 40", Assert.Throws<KvmFormatException>(() => BtfReader.Load(Write(badIndex))).Message, StringComparison.Ordinal);

        var badClass = (byte[])elf.Clone();
        badClass[4] = 9;
        Assert.Contains("ELF class 9", Assert.Throws<KvmFormatException>(() => BtfReader.Load(Write(badClass))).Message, StringComparison.Ordinal);

        var hugeCount = (byte[])elf.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(hugeCount.AsSpan(0x3C), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(hugeCount.AsSpan((int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x28)) + 32), ulong.MaxValue);
        Assert.Throws<KvmFormatException>(() => BtfReader.Load(Write(hugeCount)));

        Assert.Contains("neither raw BTF", Assert.Throws<KvmFormatException>(() => BtfReader.Load(Write("hello world"u8.ToArray()))).Message, StringComparison.Ordinal);
        Assert.Throws<KvmFormatException>(() => BtfReader.Load(Write([])));
        Assert.ThrowsAny<IOException>(() => BtfReader.Load("/nonexistent/file.btf"));
    }

    [Fact]
    public void Truncated_ELF_files_fail_cleanly_at_every_length()
    {
        var elf = Elf(false, true, [(".text", 1, new byte[8]), (".BTF", 1, SampleBtf(true, out _))]);
        for (int len = 0; len < elf.Length; len += 3)
        {
            var path = Write(elf[..len]);
            Assert.Throws<KvmFormatException>(() => BtfReader.Load(path));
        }
    }
}
