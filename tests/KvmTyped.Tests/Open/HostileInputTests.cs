using System.Buffers.Binary;

namespace KvmTyped.Tests.Open;

public class HostileInputTests
{
    private static string Map(TempDir d) => d.Text("map", Images.Lp64Map);

    [Theory]
    [InlineData(3)]
    [InlineData(20)]
    [InlineData(63)]
    public void Truncated_elf_header_is_a_format_error_naming_the_file(int length)
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build()[..length]);
        var e = Assert.ThrowsAny<KvmException>(() => Kvm.Open(Map(d), core));
        Assert.Contains(core, e.Message);
    }

    [Fact]
    public void Program_headers_past_the_end_are_a_format_error()
    {
        using var d = new TempDir();
        var built = Images.Lp64Core().Build();
        var core = d.File("vmcore", built[..100]);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(Map(d), core));
        Assert.Contains("program header table", e.Message);
        Assert.Contains(core, e.Message);
    }

    [Fact]
    public void Absurd_program_header_count_is_refused_without_a_huge_allocation()
    {
        using var d = new TempDir();
        var w = Images.Lp64Core();
        w.Patches.Add((56, [0xfe, 0xff])); // e_phnum = 65534
        var core = d.File("vmcore", w.Build());
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(Map(d), core));
        Assert.Contains("65534 entries", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
    }

    [Fact]
    public void Pt_load_past_end_of_file_opens_but_reads_fail_naming_the_file()
    {
        using var d = new TempDir();
        var w = ElfWriter.Core64().AddVmcoreInfo("OSRELEASE=x\n");
        w.Segments.Add(new ElfWriter.Segment(Images.Lp64Phys, Images.Lp64Text, Images.Page(), FileSizeOverride: 0x100000, MemSize: 0x100000));
        var core = d.File("vmcore", w.Build());
        using var kvm = Kvm.Open(Map(d), core);
        Assert.Contains(kvm.Warnings, s => s.Contains("truncated", StringComparison.Ordinal));
        var buf = new byte[16];
        kvm.ReadVirtual(Images.Lp64Text + 0x100, buf); // inside the file: fine
        var e = Assert.Throws<KvmReadException>(() => kvm.ReadVirtual(Images.Lp64Text + 0x80000, buf));
        Assert.Contains(core, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Overlapping_segments_read_one_defined_backing_and_never_crash()
    {
        using var d = new TempDir();
        var a = Enumerable.Repeat((byte)0xaa, 0x2000).ToArray();
        var b = Enumerable.Repeat((byte)0xbb, 0x2000).ToArray();
        var w = ElfWriter.Core64().AddLoad(0x100000, 0, a).AddLoad(0x101000, 0, b).AddLoad(0x100800, 0, new byte[0x100]);
        using var kvm = Kvm.Open(Map(d), d.File("vmcore", w.Build()));
        var buf = new byte[0x3000];
        kvm.ReadPhysical(0x100000, buf);
        Assert.All(buf[..0x2000], x => Assert.Equal(0xaa, x)); // the lower-starting segment wins
        Assert.All(buf[0x2000..], x => Assert.Equal(0xbb, x));
        Assert.Equal(0x3000UL, kvm.Physical.Ranges.Sum(r => (long)r.Length) is var total ? (ulong)total : 0);
    }

    [Fact]
    public void Wrapping_segment_is_a_format_error()
    {
        using var d = new TempDir();
        var w = ElfWriter.Core64();
        w.Segments.Add(new ElfWriter.Segment(0xfffffffffffff000, 0, new byte[16], MemSize: 0x2000));
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(Map(d), d.File("vmcore", w.Build())));
        Assert.Contains("wraps around", e.Message);
    }

    [Theory]
    [InlineData(0x7fffffffu, 4u)]
    [InlineData(4u, 0xfffffff0u)]
    [InlineData(4u, 0x1000u)]
    public void Note_sizes_that_overflow_or_overrun_are_format_errors(uint namesz, uint descsz)
    {
        using var d = new TempDir();
        var w = Images.Lp64Core();
        var built = w.Build();
        // The note segment starts right after the program headers: patch the first note's sizes.
        var noteOff = 64 + 2 * 56;
        BinaryPrimitives.WriteUInt32LittleEndian(built.AsSpan(noteOff), namesz);
        BinaryPrimitives.WriteUInt32LittleEndian(built.AsSpan(noteOff + 4), descsz);
        var core = d.File("vmcore", built);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(Map(d), core));
        Assert.Contains(core, e.Message);
        Assert.Contains("note", e.Message);
    }

    [Fact]
    public void Symtab_name_offsets_outside_the_string_table_are_format_errors()
    {
        using var d = new TempDir();
        var w = Images.Lp64Kernel();
        var built = w.Build();
        // Symbol 1's st_name: find .symtab via the section headers written by ElfWriter (section 2).
        var shoff = BinaryPrimitives.ReadInt64LittleEndian(built.AsSpan(40));
        var symOff = BinaryPrimitives.ReadInt64LittleEndian(built.AsSpan((int)shoff + 2 * 64 + 24));
        BinaryPrimitives.WriteUInt32LittleEndian(built.AsSpan((int)symOff + 24), 0x7ffffff0);
        var nl = d.File("vmlinux", built);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(nl, d.File("vmcore", Images.Lp64Core().Build())));
        Assert.Contains(nl, e.Message);
        Assert.Contains("outside the string table", e.Message);
    }

    [Fact]
    public void Stripped_kernel_and_garbage_namelists_are_refused()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build());
        var stripped = d.File("vmlinux", ElfWriter.Kernel64().Build());
        Assert.Contains("no symbol table", Assert.Throws<KvmOpenException>(() => Kvm.Open(stripped, core)).Message);
        var garbage = d.Text("garbage", "hello world\n");
        Assert.Contains("not a namelist", Assert.Throws<KvmFormatException>(() => Kvm.Open(garbage, core)).Message);
        var badLine = d.Text("badmap", Images.Lp64Map + "zzzz not-a-line\n");
        Assert.Contains("line 4", Assert.Throws<KvmFormatException>(() => Kvm.Open(badLine, core)).Message);
        Assert.Contains("is a core file", Assert.Throws<KvmOpenException>(() => Kvm.Open(core, core)).Message);
    }

    [Fact]
    public void Big_endian_headers_parse_with_the_file_byte_order()
    {
        using var d = new TempDir();
        var w = new ElfWriter { Is64 = true, BigEndian = true, Machine = 0, Type = 4 }.AddLoad(0x1000, 0, Images.Page());
        using var kvm = Kvm.Open(Map(d), d.File("vmcore", w.Build()));
        Assert.Equal(DataModel.LP64, kvm.DataModel);
        var buf = new byte[Images.Banner.Length];
        kvm.ReadPhysical(0x1100, buf);
        Assert.Equal(Images.Banner, System.Text.Encoding.ASCII.GetString(buf));
        var w32 = new ElfWriter { Is64 = false, BigEndian = true, Machine = 0, Type = 4 }.AddLoad(0x1000, 0, Images.Page());
        using var kvm32 = Kvm.Open(d.Text("map32", Images.Ilp32Map), d.File("vmcore32", w32.Build()));
        Assert.Equal(DataModel.ILP32, kvm32.DataModel);
    }

    [Fact]
    public void Pn_xnum_takes_the_program_header_count_from_section_header_0()
    {
        using var d = new TempDir();
        // Build a core with symbols only to get a section header table, then set e_phnum = PN_XNUM and sh_info = real count.
        var w = Images.Lp64Core();
        foreach (var s in Images.Lp64Kernel().Symbols)
            w.Symbols.Add(s);
        var built = w.Build();
        var shoff = BinaryPrimitives.ReadInt64LittleEndian(built.AsSpan(40));
        BinaryPrimitives.WriteUInt16LittleEndian(built.AsSpan(56), 0xffff);
        BinaryPrimitives.WriteUInt32LittleEndian(built.AsSpan((int)shoff + 44), 2);
        using var kvm = Kvm.Open(Map(d), d.File("vmcore", built));
        Assert.Equal(Images.Banner, kvm.ReadCString(Images.Lp64Text + 0x100));
    }
}
