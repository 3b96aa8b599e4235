using System.Text.Json;
using KvmTyped.Compat;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>Inputs that used to get a misleading answer: a truncated dump, a file that is no dump, a type file of
/// another kernel, and library messages that named the tool's flags.</summary>
public sealed class HonestAnswersTests : IDisposable
{
    private static readonly string Folder = Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64");
    private static readonly string Map = Path.Combine(Folder, "System.map-6.1.0-56-amd64");
    private static readonly string Sample = Path.Combine(Folder, "vmcore.kdump");
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-honest-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The first <paramref name="bytes"/> bytes of the sample, as a copy that stopped early leaves it.</summary>
    private string Head(long bytes)
    {
        var path = Path.Combine(_dir, $"head-{bytes}.kdump");
        using var source = File.OpenRead(Sample);
        using var target = File.Create(path);
        var buffer = new byte[1 << 20];
        long left = bytes;
        while (left > 0)
        {
            var n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            target.Write(buffer, 0, n);
            left -= n;
        }
        return path;
    }

    [Fact]
    public void A_truncated_kdump_is_reported_at_open_and_named_first_when_a_read_fails()
    {
        var head = Head(13_000_000);
        using (var kvm = Kvm.Open(Map, head))
        {
            Assert.NotNull(kvm.Truncation);
            Assert.StartsWith($"{head} is truncated: the file ends at byte 13000000", kvm.Truncation);
            Assert.True(kvm.DescribeDump().Kdump!.Incomplete);
            Assert.Contains(kvm.Warnings, w => w.StartsWith(kvm.Truncation!, StringComparison.Ordinal));
        }
        var (code, text, _) = Run("info", "-n", Map, "-c", head);
        Assert.Equal(0, code);
        Assert.Contains($"warning:      {head} is truncated", text, StringComparison.Ordinal);
        var (_, json, _) = Run("info", "--json", "-n", Map, "-c", head);
        using (var doc = JsonDocument.Parse(json))
            Assert.True(doc.RootElement.GetProperty("kdump").GetProperty("incomplete").GetBoolean());
        // ps needs the kernel's BTF, which lies in the part that is missing: the truncation is the cause named first.
        var (ps, _, err) = Run("ps", "-n", Map, "-c", head);
        Assert.Equal(1, ps);
        Assert.StartsWith($"kvmtyped: {head} is truncated", err);
    }

    [Theory]
    [InlineData(300_000)]
    [InlineData(1_000_000)]
    [InlineData(2_000_000)]
    [InlineData(4_000_000)]
    [InlineData(8_000_000)]
    public void A_kdump_cut_to_a_few_megabytes_fails_naming_the_truncation_not_the_namelist(long bytes)
    {
        var head = Head(bytes);
        var (code, _, err) = Run("ps", "-n", Map, "-c", head);
        Assert.Equal(1, code);
        Assert.StartsWith($"kvmtyped: {head} is truncated: the file ends at byte {bytes}", err);
    }

    [Fact]
    public void The_whole_sample_is_not_truncated()
    {
        using var kvm = Kvm.Open(Map, Sample);
        Assert.Null(kvm.Truncation);
        Assert.False(kvm.DescribeDump().Kdump!.Incomplete);
    }

    [Theory]
    [InlineData("README.md")]
    [InlineData("samples/linux-amd64/System.map-6.1.0-56-amd64")]
    public void A_file_that_is_no_dump_is_not_taken_for_a_raw_image(string file)
    {
        var path = Path.Combine(Fixtures.RepoRoot, file);
        var (code, _, err) = Run("info", "-n", Map, "-c", path);
        Assert.Equal(1, code);
        Assert.Equal($"kvmtyped: {path}: not a known dump format (tried ELF core, kdump-compressed (plain or flattened), LiME/AVML); a raw physical memory image is read only when asked for (--raw)" + Environment.NewLine, err);
        // The library names its option, not the tool's flag.
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(Map, path));
        Assert.Contains("(KvmOpenOptions.RawImage)", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("--raw", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A raw image of the sample's memory (file offset = physical address) opens when asked for: with --raw,
    /// with <see cref="KvmOpenOptions.RawImage"/>, and through kvm_open with <see cref="Libkvm.Options"/>.</summary>
    [Fact]
    public void A_raw_image_opens_when_asked_for()
    {
        var raw = RawCopyOfSample(_dir);
        Assert.Throws<KvmFormatException>(() => Kvm.Open(Map, raw));
        using (var kvm = Kvm.Open(Map, raw, options: new KvmOpenOptions { RawImage = true }))
            Assert.Equal("raw", kvm.FormatName);
        var (code, o, e) = Run("uname", "--raw", "-n", Map, "-c", raw);
        Assert.True(code == 0, e);
        Assert.StartsWith("Linux kvmsample-guest 6.1.0-56-amd64", o);

        var saved = Libkvm.Options;
        try
        {
            Libkvm.Options = null;
            Assert.Null(Libkvm.kvm_open(Map, raw, null, Libkvm.O_RDONLY, null));
            Libkvm.Options = new KvmOpenOptions { RawImage = true };
            var kd = Libkvm.kvm_open(Map, raw, null, Libkvm.O_RDONLY, null);
            Assert.NotNull(kd);
            Assert.Equal(0, Libkvm.kvm_close(kd));
        }
        finally
        {
            Libkvm.Options = saved;
        }
    }

    /// <summary>The sample's physical memory as a raw image in <paramref name="dir"/> (sparse: the pages the filtered
    /// dump left out are holes).</summary>
    internal static string RawCopyOfSample(string dir)
    {
        var raw = Path.Combine(dir, "memory.raw");
        using var source = Kvm.Open(Map, Sample);
        using var f = File.Create(raw);
        var buf = new byte[source.PageSize];
        foreach (var r in source.DescribeDump().Ranges)
        {
            f.SetLength(Math.Max(f.Length, (long)r.End));
            for (var a = r.Start; a < r.End; a += (ulong)buf.Length)
            {
                if (!source.TryReadPhysical(a, buf, out _))
                    continue;
                f.Position = (long)a;
                f.Write(buf);
            }
        }
        return raw;
    }

    [Theory]
    [InlineData("struct", "task_struct", "init_task")]
    [InlineData("ps")]
    [InlineData("bt")]
    [InlineData("mod")]
    [InlineData("uname")]
    [InlineData("log")]
    public void Every_command_refuses_the_types_of_the_other_data_model(params string[] command)
    {
        var i386Btf = Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf");
        var (code, o, err) = Run([.. command, "-n", Map, "-c", Sample, "--types", i386Btf]);
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Equal($"kvmtyped: file {i386Btf}: the BTF does not fit this kernel (kernel 6.1.0-56-amd64): its long is 4 bytes, but the kernel is LP64 (8-byte pointers)" + Environment.NewLine, err);
    }

    [Fact]
    public void Types_of_another_build_are_refused_where_they_contradict_vmcoreinfo()
    {
        // Debian's PREEMPT_RT build of the same release: same data model, other struct layouts.
        var rt = Fixtures.Get("amd64/rt/vmlinux-6.1.0-56-rt-amd64.btf");
        var (code, _, err) = Run("struct", "list_head", "init_task", "-n", Map, "-c", Sample, "--types", rt);
        Assert.Equal(1, code);
        Assert.Contains("the BTF does not fit this kernel (kernel 6.1.0-56-amd64): ", err, StringComparison.Ordinal);
        Assert.Contains("struct pglist_data is 174400 bytes, but VMCOREINFO's SIZE(pglist_data) is 174208", err, StringComparison.Ordinal);
        Assert.Contains("pglist_data.node_id is at offset 171616, but VMCOREINFO's OFFSET(pglist_data.node_id) is 171584", err, StringComparison.Ordinal);
        // info says so where it tells where the types come from.
        var (info, text, _) = Run("info", "-n", Map, "-c", Sample, "--types", rt);
        Assert.Equal(0, info);
        Assert.Contains($"btf:          none (file {rt}: the BTF does not fit this kernel", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_kernels_own_types_fit_it()
    {
        var vmlinux = Fixtures.Get(Dumps.Amd64Vmlinux);
        using (var kvm = Kvm.Open(Map, Sample, options: new KvmOpenOptions { TypesPath = vmlinux }))
            Assert.StartsWith("file ", kvm.Btf.Source);
        using (var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), Fixtures.Get(Dumps.I386Kdump), options: new KvmOpenOptions { TypesPath = Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf") }))
            Assert.StartsWith("file ", kvm.Btf.Source);
        using (var kvm = Kvm.Open(Fixtures.Get(Dumps.Arm64Map), Fixtures.Get(Dumps.Arm64Kdump)))
            Assert.StartsWith("image memory", kvm.Btf.Source);
    }

    [Fact]
    public void Library_messages_name_the_api_option_and_the_tool_its_flag()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.I386Map), Fixtures.Get(Dumps.I386Kdump));
        var e = Assert.Throws<KvmException>(() => kvm.Btf);
        Assert.Contains("KvmOpenOptions.TypesPath", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("--types", e.Message, StringComparison.Ordinal);
        var (_, _, err) = Run("ps", "-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386Kdump));
        Assert.Contains("(give a type file with --types: ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("KvmOpenOptions", err, StringComparison.Ordinal);

        // The i386 kernel keeps text symbols only in its kallsyms: a data symbol needs the namelist.
        using var noMap = Kvm.Open(null, Fixtures.Get(Dumps.I386Kdump));
        var missing = Assert.Throws<KvmException>(() => noMap.SymbolAddress("init_task"));
        Assert.EndsWith("give the kernel's System.map or vmlinux as the namelist argument", missing.Message, StringComparison.Ordinal);
        var (_, _, err2) = Run("ps", "-c", Fixtures.Get(Dumps.I386Kdump), "--types", Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"));
        Assert.EndsWith("give the kernel's System.map or vmlinux (-n)" + Environment.NewLine, err2);
    }

    [Fact]
    public void The_no_btf_message_names_the_namelist_once()
    {
        var vmlinux = Fixtures.Get(Dumps.I386Vmlinux);
        var (code, _, err) = Run("ps", "-n", vmlinux, "-c", Fixtures.Get(Dumps.I386Kdump));
        Assert.Equal(1, code);
        Assert.Equal(1, CountOf(err, vmlinux));
        Assert.Contains($"namelist {vmlinux}: the ELF file has no .BTF section", err, StringComparison.Ordinal);
        Assert.Contains("; no DWARF (.debug_info) in this ELF file;", err, StringComparison.Ordinal);
    }

    private static int CountOf(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
            n++;
        return n;
    }
}
