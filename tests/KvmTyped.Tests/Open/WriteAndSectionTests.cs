using System.Security.Cryptography;
using KvmTyped.Compat;
using KvmTyped.Formats;
using static KvmTyped.Compat.Libkvm;

namespace KvmTyped.Tests.Open;

public class WriteAndSectionTests
{
    [Fact]
    public void Kwrite_through_O_RDWR_changes_exactly_the_bytes_written()
    {
        using var d = new TempDir();
        var w = Images.Lp64Core();
        var built = w.Build();
        var core = d.File("vmcore", built);
        var dataOff = w.SegmentDataOffset(built, 0);
        var kd = kvm_open(d.Text("map", Images.Lp64Map), core, null, O_RDWR, null);
        Assert.NotNull(kd);
        byte[] patch = [0xde, 0xad, 0xbe, 0xef, 0x01];
        Assert.Equal(5, kvm_kwrite(kd, Images.Lp64Text + 0x0ffe, patch)); // crosses a page boundary
        var back = new byte[5];
        Assert.Equal(5, kvm_kread(kd, Images.Lp64Text + 0x0ffe, back));
        Assert.Equal(patch, back);
        Assert.Equal(0, kvm_close(kd));

        var after = File.ReadAllBytes(core);
        Assert.Equal(built.Length, after.Length);
        for (var i = 0; i < built.Length; i++)
        {
            var inPatch = i >= dataOff + 0x0ffe && i < dataOff + 0x0ffe + 5;
            Assert.True(inPatch ? after[i] == patch[i - (dataOff + 0x0ffe)] : after[i] == built[i], $"byte {i} (patch at {dataOff + 0x0ffe})");
        }
    }

    [Fact]
    public void A_write_that_cannot_land_whole_changes_nothing()
    {
        using var d = new TempDir();
        var built = Images.Lp64Core().Build();
        var core = d.File("vmcore", built);
        using var kvm = Kvm.Open(d.Text("map", Images.Lp64Map), core, flags: KvmOpenFlags.ReadWrite);
        // Last 2 bytes of the segment and 2 beyond it.
        Assert.Throws<KvmWriteException>(() => kvm.WriteVirtual(Images.Lp64Text + 0x1ffe, new byte[4]));
        kvm.Close();
        Assert.Equal(built, File.ReadAllBytes(core));
    }

    private static (string Dir, string Core, string Map) SplitImage(TempDir d, string sectionName, bool writeSection = true)
    {
        var section = new byte[0x3000];
        new Random(7).NextBytes(section);
        "SECTION!"u8.CopyTo(section.AsSpan(0x10));
        var reference = new SectionFileReference(sectionName, 0x4000000, Images.Lp64Text + 0x100000, (ulong)section.Length);
        var core = Images.Lp64Core().AddNote(SectionFileReference.NoteName, SectionFileReference.NoteType, reference.Encode()).Build();
        if (writeSection && !sectionName.Contains('/') && !sectionName.Contains(".."))
            d.File(sectionName, section);
        return (d.Path, d.File("vmcore", core), d.Text("map", Images.Lp64Map));
    }

    [Fact]
    public void Section_files_beside_the_core_are_loaded_and_appended()
    {
        using var d = new TempDir();
        var (_, core, map) = SplitImage(d, "vmcore.sec1");
        using var kvm = Kvm.Open(map, core);
        var buf = new byte[8];
        kvm.ReadPhysical(0x4000010, buf);
        Assert.Equal("SECTION!"u8.ToArray(), buf);
        kvm.ReadVirtual(Images.Lp64Text + 0x100010, buf);
        Assert.Equal("SECTION!"u8.ToArray(), buf);
        var s = Assert.Single(kvm.SectionFiles);
        Assert.True(s.Present);
        Assert.Contains(kvm.Physical.Ranges, r => r.Origin == "vmcore.sec1" && r.Start == 0x4000000);
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
    }

    [Fact]
    public void A_missing_section_file_fails_the_open_naming_it()
    {
        using var d = new TempDir();
        var (_, core, map) = SplitImage(d, "vmcore.sec1", writeSection: false);
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(map, core));
        Assert.Contains("section file vmcore.sec1 is missing", e.Message);
    }

    [Fact]
    public void With_KVM_NSRCH_a_missing_section_is_recorded_and_reads_name_it()
    {
        using var d = new TempDir();
        var (_, core, map) = SplitImage(d, "vmcore.sec1", writeSection: false);
        var kd = kvm_open(map, core, null, O_RDONLY | KVM_NSRCH, null);
        Assert.NotNull(kd);
        var s = Assert.Single(kd!.Kvm.SectionFiles);
        Assert.False(s.Present);
        Assert.Equal(-1, kvm_kread(kd, Images.Lp64Text + 0x100000, new byte[8]));
        var e = Assert.Throws<KvmReadException>(() => kd.Kvm.ReadPhysical(0x4000000, new byte[8]));
        Assert.Contains("section file vmcore.sec1, which is missing", e.Message);
        Assert.Equal(8, kvm_kread(kd, Images.Lp64Text + 0x100, new byte[8]));
        kvm_close(kd);
    }

    [Theory]
    [InlineData("../vmcore.sec1")]
    [InlineData("sub/vmcore.sec1")]
    [InlineData("..")]
    public void Section_references_that_are_not_plain_names_are_refused(string name)
    {
        using var d = new TempDir();
        var (_, core, map) = SplitImage(d, name, writeSection: false);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(map, core, flags: KvmOpenFlags.NoSearch));
        Assert.Contains("not a plain file name", e.Message);
    }

    [Fact]
    public void Nlist_fills_values_and_counts_the_missing()
    {
        using var d = new TempDir();
        var kd = kvm_open(d.File("vmlinux", Images.Lp64Kernel().Build()), d.File("core", Images.Lp64Core().Build()), null, O_RDONLY, null);
        var nl = new nlist[] { new("linux_banner"), new("no_such_symbol"), new("init_task"), new(null), new("after_terminator") };
        Assert.Equal(1, kvm_nlist(kd, nl));
        Assert.Equal(Images.Lp64Text + 0x100, nl[0].n_value);
        Assert.Equal((byte)'D', nl[0].n_type);
        Assert.Equal(0UL, nl[1].n_value);
        Assert.Equal(Images.Lp64Text + 0x400, nl[2].n_value);
        Assert.Equal(0UL, nl[4].n_value);
        var buf = new byte[Images.Banner.Length];
        Assert.Equal(buf.Length, kvm_kread(kd, nl[0].n_value, buf));
        Assert.Equal(Images.Banner, System.Text.Encoding.ASCII.GetString(buf));
        Assert.Equal(-1, kvm_kread(kd, 0xffff888000000000, buf));
        kvm_close(kd);
    }
}

/// <summary>Tests that change the facade's process-wide settings run alone.</summary>
[CollectionDefinition("Libkvm globals", DisableParallelization = true)]
public sealed class LibkvmGlobalsCollection;

[Collection("Libkvm globals")]
public class FacadeGlobalsTests
{
    [Fact]
    public void Read_only_open_refuses_writes_and_leaves_the_file_byte_identical()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build());
        var before = SHA256.HashData(File.ReadAllBytes(core));
        var err = new StringWriter();
        ErrorWriter = err;
        try
        {
            var kd = kvm_open(d.Text("map", Images.Lp64Map), core, null, O_RDONLY, "t");
            Assert.Equal(-1, kvm_kwrite(kd, Images.Lp64Text, new byte[] { 1, 2, 3 }));
            Assert.Contains("open read-only", err.ToString());
            Assert.Throws<KvmWriteException>(() => kd!.Kvm.WritePhysical(Images.Lp64Phys, new byte[] { 1 }));
            kvm_close(kd);
        }
        finally
        {
            ErrorWriter = Console.Error;
        }
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(core)));
    }

    [Fact]
    public void Facade_in_a_64_bit_process_refuses_a_32_bit_core_unless_told_otherwise()
    {
        Assert.Equal(8, IntPtr.Size);
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Ilp32Core().Build());
        var map = d.Text("map", Images.Ilp32Map);
        var err = new StringWriter();
        ErrorWriter = err;
        try
        {
            Assert.Null(kvm_open(map, core, null, O_RDONLY, "port"));
            Assert.Equal($"port: {core} is a 32-bit core file - cannot examine with 64-bit libkvm{Environment.NewLine}", err.ToString());
            Libkvm.DataModel = KvmTyped.DataModel.ILP32;
            var kd = kvm_open(map, core, null, O_RDONLY, "port");
            Assert.NotNull(kd);
            Assert.Equal(DataModel.ILP32, kd!.Kvm.DataModel);
            kvm_close(kd);
        }
        finally
        {
            Libkvm.DataModel = null;
            ErrorWriter = Console.Error;
        }
    }
}
