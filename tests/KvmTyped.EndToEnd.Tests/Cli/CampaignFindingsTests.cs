using System.Buffers.Binary;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>The reproducers of the mutation campaign (issue 15), each ending as the tool promises: a message and exit 1,
/// or the right output with exit 0.</summary>
public sealed class CampaignFindingsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("kvmtyped-findings-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Finding1_unknown_page_flags_make_info_a_message_and_exit_1()
    {
        var bytes = File.ReadAllBytes(Fixtures.Get(Dumps.Amd64Kdump));
        // disk_dump_header (64-bit layout): block_size at 428, sub_hdr_size at 432, bitmap_blocks at 436; the page
        // descriptors follow the bitmaps, 24 bytes each: offset i64, size u32, flags u32 at +12.
        var blockSize = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(428));
        var subHeader = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(432));
        var bitmapBlocks = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(436));
        var descriptors = (long)(1 + subHeader + bitmapBlocks) * blockSize;
        var d = (int)descriptors;
        while (BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(d)) == 0)
            d += 24;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(d + 12), 0x80);
        var core = Write("flags.kdump", bytes);
        var (code, o, e) = Run("info", "-n", Fixtures.Get(Dumps.Amd64Map), "-c", core);
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Equal($"kvmtyped: {core}: at offset 0x{d + 12:x}: unknown page compression flags 0x80{Environment.NewLine}", e);
    }

    [Fact]
    public void Finding2_schema_layout_reads_no_device_directory_or_huge_file()
    {
        var (code, _, e) = Run("schema", "layout", "/dev/zero");
        Assert.Equal(1, code);
        Assert.Equal($"kvmtyped: /dev/zero: is not a regular file (a device or a pipe): give a schema file{Environment.NewLine}", e);
        (code, _, e) = Run("schema", "layout", _dir.FullName);
        Assert.Equal(1, code);
        Assert.Equal($"kvmtyped: {_dir.FullName}: is a directory, not a schema file{Environment.NewLine}", e);
        var big = Path.Combine(_dir.FullName, "big.h");
        using (var f = File.Create(big))
            f.SetLength(17L << 20); // sparse: costs no disk
        (code, _, e) = Run("schema", "layout", big);
        Assert.Equal(1, code);
        Assert.Contains("more than the 16 MiB a schema file may have", e);
        (code, _, e) = Run("schema", "layout", Path.Combine(_dir.FullName, "none.h"));
        Assert.Equal(1, code);
        Assert.EndsWith("none.h: No such file or directory" + Environment.NewLine, e);
    }

    [Fact]
    public void Finding4_address_expressions_refuse_overflow()
    {
        string[] files = ["-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.NoKaslrElf)];
        var (code, o, e) = Run(["rd", "linux_banner+0xffffffffffffffff", .. files]);
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Equal("kvmtyped: \"linux_banner+0xffffffffffffffff\": 0xffffffff82161900 + 0xffffffffffffffff overflows the 64-bit virtual address space" + Environment.NewLine, e);
        (code, _, e) = Run(["rd", "init_task+0x100000000000", .. files]);
        Assert.Equal(1, code);
        Assert.Contains("overflows the 64-bit virtual address space", e);
        (code, _, e) = Run(["struct", "list_head", "init_task+0x100000000000", .. files]);
        Assert.Equal(1, code);
        Assert.Contains("overflows", e);
        // The largest offset that still fits is read (and fails as an address, not as arithmetic).
        (code, _, e) = Run(["rd", "0xfffffffffffffff0+15", "-l", "1", .. files]);
        Assert.Equal(1, code);
        Assert.DoesNotContain("overflows", e);
        Assert.Equal(0, Run(["rd", "linux_banner+6", "-l", "1", .. files]).Code);
    }

    [Fact]
    public void Finding4_a_32_bit_kernel_address_ends_at_4_GiB()
    {
        var (code, _, e) = Run("rd", "linux_banner+0x100000000", "-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386Kdump));
        Assert.Equal(1, code);
        Assert.Contains("overflows the 32-bit virtual address space", e);
    }

    [Fact]
    public void Finding5_control_bytes_from_a_namelist_reach_the_terminal_escaped()
    {
        var map = File.ReadAllText(Fixtures.Get(Dumps.Amd64Map)).Replace(
            "ffffffff82161900 D linux_banner\n", "ffffffff82161900 D linux_banner\nffffffff82161910 D evil\u001b[2J\rname\u000bx\n", StringComparison.Ordinal);
        var path = Path.Combine(_dir.FullName, "System.map");
        File.WriteAllText(path, map);
        var (code, o, e) = Run("sym", "ffffffff82161911", "-n", path, "-c", Fixtures.Get(Dumps.NoKaslrElf));
        Assert.True(code == 0, e);
        // sym prints func+off/len as the kernel does; len runs to the next symbol of the namelist.
        Assert.Equal("ffffffff82161911 evil\\x1b[2J\\x0dname\\x0bx+0x1/0xb8" + Environment.NewLine, o);
        (code, _, e) = Run("nlist", "no\u001bsuch", "-n", path, "-c", Fixtures.Get(Dumps.NoKaslrElf));
        Assert.Equal(1, code);
        Assert.Contains("no symbol \"no\\x1bsuch\"", e);
        Assert.DoesNotContain('\u001b', e);
    }

    [Fact]
    public void Finding5_schema_text_in_messages_is_escaped()
    {
        var path = Write("bad.h", "struct a { int x; };\nstruct b { int \u001b[2Jy; };\n"u8.ToArray());
        var (code, _, e) = Run("schema", "layout", path);
        Assert.Equal(1, code);
        Assert.StartsWith("kvmtyped: ", e);
        Assert.Contains("\\x1b", e);
        Assert.DoesNotContain('\u001b', e);
        Assert.Equal(e.TrimEnd().Split(Environment.NewLine).Length, e.Split("kvmtyped: ").Length - 1);
    }

    [Fact]
    public void Finding7_a_deep_typedef_chain_is_named_as_such()
    {
        var text = new System.Text.StringBuilder("typedef int t0;\n");
        for (var i = 1; i <= 70; i++)
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"typedef t{i - 1} t{i};\n");
        text.Append("struct s { t70 deep; t10 shallow; };\n");
        var (code, _, e) = Run("schema", "layout", Write("deep.h", System.Text.Encoding.ASCII.GetBytes(text.ToString())));
        Assert.Equal(1, code);
        Assert.Contains("KVMT0009 the type of member 'deep' of 'struct s' goes through more than 64 typedefs", e);
        Assert.DoesNotContain("unknown type", e);
        Assert.DoesNotContain("shallow", e);
    }
}
