using System.Text.Json;
using KvmTyped.Cli;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests;

public class CliTests
{
    private static string[] Amd64(params string[] args) =>
        [.. args, "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.NoKaslrElf)];

    [Fact]
    public void Rd_string_prints_the_banner_from_truth()
    {
        var truth = Truth.Load("amd64/nokaslr");
        var (code, o, e) = Run(Amd64("rd", "linux_banner", "-s"));
        Assert.Equal(0, code);
        Assert.Equal("", e);
        Assert.Equal(truth.LinuxBanner + Environment.NewLine, o);
    }

    [Fact]
    public void Rd_string_on_the_i386_dump_prints_its_banner()
    {
        var truth = Truth.Load("i386/pae-kdump-kaslr");
        var (code, o, _) = Run("rd", "linux_banner", "-s", "-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386KdumpElf));
        Assert.Equal(0, code);
        Assert.Equal(truth.LinuxBanner, o.TrimEnd());
    }

    [Fact]
    public void Rd_hex_dump_and_offsets_and_physical()
    {
        var (code, o, _) = Run(Amd64("rd", "linux_banner+0x6", "-l", "20"));
        Assert.Equal(0, code);
        var lines = o.TrimEnd().Split(Environment.NewLine);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("ffffffff82161906:  76 65 72 73 69 6f 6e 20", lines[0]); // "version "
        Assert.EndsWith("version 6.1.0-56", lines[0]);
        // The same bytes physically: text mapping, phys_base 0.
        var (pcode, po, _) = Run(Amd64("rd", "0x2161906", "--phys", "-l", "8"));
        Assert.Equal(0, pcode);
        Assert.StartsWith("0000000002161906:  76 65 72 73 69 6f 6e 20", po);
        var (bad, _, be) = Run(Amd64("rd", "0x1000"));
        Assert.Equal(1, bad);
        Assert.StartsWith("kvmtyped: cannot translate 0x1000", be);
    }

    [Fact]
    public void Info_json_has_the_documented_keys()
    {
        var truth = Truth.Load("amd64/nokaslr");
        var (code, o, _) = Run(Amd64("info", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var r = doc.RootElement;
        Assert.Equal("LP64", r.GetProperty("dataModel").GetString());
        Assert.Equal("x86_64", r.GetProperty("machine").GetString());
        Assert.Equal("ELF64 core", r.GetProperty("format").GetString());
        Assert.Equal(4096, r.GetProperty("pageSize").GetInt32());
        Assert.Equal(truth.Release, r.GetProperty("release").GetString());
        Assert.Equal("0x0", r.GetProperty("kaslrOffset").GetString());
        Assert.True(r.GetProperty("memory").GetArrayLength() > 0);
        Assert.StartsWith("0x", r.GetProperty("memory")[0].GetProperty("start").GetString());
        var (tcode, text, _) = Run(Amd64("info"));
        Assert.Equal(0, tcode);
        Assert.Contains("data model:   LP64", text);
        Assert.Contains("release:      " + truth.Release, text);
    }

    [Fact]
    public void Nlist_json_and_missing_symbols()
    {
        var truth = Truth.Load("amd64/nokaslr");
        var expected = truth.RuntimeSymbols().First(s => s.Name == "init_task");
        var (code, o, _) = Run(Amd64("nlist", "init_task", "linux_banner", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        Assert.Equal($"0x{expected.Address:x}", doc.RootElement.GetProperty("init_task").GetString());
        Assert.Equal("0xffffffff82161900", doc.RootElement.GetProperty("linux_banner").GetString());
        var (mcode, mo, me) = Run(Amd64("nlist", "linux_banner", "no_such_symbol_xyz"));
        Assert.Equal(1, mcode);
        Assert.Equal("ffffffff82161900 linux_banner" + Environment.NewLine, mo);
        Assert.Contains("no symbol \"no_such_symbol_xyz\"", me);
        Assert.StartsWith("kvmtyped: ", me);
    }

    [Fact]
    public void Sym_prints_symbol_offset_and_length_as_the_kernel_does()
    {
        // linux_banner is 0xc8 bytes: kallsyms_offsets follows it in System.map.
        var (code, o, _) = Run(Amd64("sym", "ffffffff82161910", "0xffffffff82161900"));
        Assert.Equal(0, code);
        Assert.Equal($"ffffffff82161910 linux_banner+0x10/0xc8{Environment.NewLine}ffffffff82161900 linux_banner+0x0/0xc8{Environment.NewLine}", o);
        var (jcode, jo, _) = Run(Amd64("sym", "ffffffff82161910", "--json"));
        Assert.Equal(0, jcode);
        using var doc = JsonDocument.Parse(jo);
        Assert.Equal("linux_banner", doc.RootElement[0].GetProperty("symbol").GetString());
        Assert.Equal(16, doc.RootElement[0].GetProperty("offset").GetInt32());
        Assert.Equal(0xc8, doc.RootElement[0].GetProperty("size").GetInt32());
        Assert.Equal(JsonValueKind.Null, doc.RootElement[0].GetProperty("module").ValueKind);
        // A direct-map address is in no symbol's region: said so, not phys_startup_64+0xffff8880….
        var (bad, bo, be) = Run(Amd64("sym", "ffff888000001000"));
        Assert.Equal(1, bad);
        Assert.Equal("", bo);
        Assert.Equal($"kvmtyped: 0xffff888000001000: outside the kernel image and every module{Environment.NewLine}", be);
    }

    [Fact]
    public void Errors_follow_the_errstr_contract_and_usage_errors_exit_2()
    {
        var core = Fixtures.Get(Dumps.NoKaslrElf);
        var (code, o, e) = Run("info", "-n", Fixtures.Get(Dumps.I386Map), "-c", core);
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Equal($"kvmtyped: {core} is a 64-bit core file - cannot examine with a 32-bit namelist{Environment.NewLine}", e);
        Assert.Equal(2, Run("no-such-command").Code);
        Assert.Equal(2, Run("info", "--no-such-option").Code);
        Assert.Equal(2, Run().Code);
        Assert.Equal(2, Run("nlist").Code);
        var (hcode, ho, _) = Run("--help");
        Assert.Equal(0, hcode);
        Assert.Contains("nlist", ho);
    }
}

public class BtfCliTests
{
    [Fact]
    public void Btf_dump_json_and_text_on_the_i386_detached_btf()
    {
        var btf = Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf");
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["btf", "dump", btf, "list_head", "--json"], o, e));
        using var doc = JsonDocument.Parse(o.ToString());
        var s = doc.RootElement.GetProperty("structs")[0];
        Assert.Equal("list_head", s.GetProperty("name").GetString());
        Assert.Equal(8, s.GetProperty("size").GetInt32());
        Assert.Equal(4, s.GetProperty("fields")[1].GetProperty("offset").GetInt32());
        o = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["btf", "dump", btf, "new_utsname"], o, e));
        Assert.Contains("struct new_utsname {", o.ToString());
        Assert.Contains("/* size: 390", o.ToString());
        e = new StringWriter();
        Assert.Equal(1, CommandLine.Run(["btf", "dump", btf, "no_such_struct_xyz"], new StringWriter(), e));
        Assert.StartsWith("kvmtyped: ", e.ToString());
        Assert.Contains("no_such_struct_xyz", e.ToString());
    }
}

public class InfoCliTests
{
    [Theory]
    [InlineData("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Map, 4, false, "lzo")]
    [InlineData("i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Map, 3, true, "zlib")]
    public void Info_json_on_kdump_reports_layout_and_codecs(string folder, string core, string map, int levels, bool pae, string codec)
    {
        var truth = Truth.Load(folder);
        var o = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["info", "--json", "-n", Fixtures.Get(map), "-c", Fixtures.Get(core)], o, new StringWriter()));
        using var doc = JsonDocument.Parse(o.ToString());
        var r = doc.RootElement;
        Assert.Equal("kdump-compressed", r.GetProperty("format").GetString());
        Assert.Equal($"0x{truth.KaslrOffset:x}", r.GetProperty("kaslrOffset").GetString());
        Assert.Equal(levels, r.GetProperty("pagingLevels").GetInt32());
        Assert.Equal(pae, r.GetProperty("pae").GetBoolean());
        Assert.Equal(truth.Release, r.GetProperty("release").GetString());
        Assert.Contains(codec, r.GetProperty("kdump").GetProperty("codecs").EnumerateArray().Select(c => c.GetString()));
    }
}

public class SplitTests
{
    [Fact]
    public void Split_writes_a_core_and_section_files_that_open_to_the_same_memory()
    {
        var map = Fixtures.Get(Dumps.I386Map);
        var source = Fixtures.Get(Dumps.I386Kdump);
        var dir = Directory.CreateTempSubdirectory("kvmtyped-split-");
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            Assert.Equal(0, CommandLine.Run(["split", dir.FullName, "--core-size", "8", "--section-size", "32", "-n", map, "-c", source], o, e));
            Assert.Equal("", e.ToString());
            var written = o.ToString().Trim().Split(Environment.NewLine).Select(l => l.Split(' ')[0]).ToArray();
            Assert.True(written.Length >= 3, o.ToString());
            Assert.Equal(Path.Combine(dir.FullName, "vmcore"), written[0]);

            using var original = Kvm.Open(map, source);
            using (var split = Kvm.Open(map, written[0]))
            {
                Assert.Equal(written.Length - 1, split.SectionFiles.Count);
                Assert.All(split.SectionFiles, s => Assert.True(s.Present));
                Assert.Equal(original.KaslrOffset, split.KaslrOffset);
                Assert.Equal(original.ReadCString(original.SymbolAddress("linux_banner")), split.ReadCString(split.SymbolAddress("linux_banner")));
                // Every page the source holds reads the same from the split files.
                var a = new byte[4096];
                var b = new byte[4096];
                var compared = 0;
                foreach (var r in original.Physical.Ranges)
                {
                    for (var pa = r.Start; pa + 4096 <= r.End; pa += 4096 * 7)
                    {
                        if (!original.Physical.TryRead(pa, a, out _))
                            continue;
                        split.ReadPhysical(pa, b);
                        Assert.True(a.AsSpan().SequenceEqual(b), $"page 0x{pa:x}");
                        compared++;
                    }
                }
                Assert.True(compared > 1000, $"{compared} pages compared");
            }

            // Without one section file: refused without KVM_NSRCH, opened with it, and reads there name the file.
            var missing = written[^1];
            File.Move(missing, missing + ".away");
            var err = Assert.Throws<KvmOpenException>(() => Kvm.Open(map, written[0]));
            Assert.Contains($"section file {Path.GetFileName(missing)} is missing", err.Message);
            using var partial = Kvm.Open(map, written[0], flags: KvmOpenFlags.NoSearch);
            var gone = partial.SectionFiles.Single(s => !s.Present);
            var read = Assert.Throws<KvmReadException>(() => partial.ReadPhysical(gone.PhysicalAddress, new byte[8]));
            Assert.Contains(Path.GetFileName(missing), read.Message);
            Assert.Equal(original.ReadCString(original.SymbolAddress("linux_banner")), partial.ReadCString(partial.SymbolAddress("linux_banner")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

public class RdWordsTests
{
    [Fact]
    public void Rd_words_read_kernel_variables_as_truth_records_them()
    {
        var o = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["rd", "page_offset_base", "-w", "8", "-l", "8", "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.Amd64Kdump)], o, new StringWriter()));
        Assert.Equal("ffffffff9e015740:  ffff8afd00000000" + Environment.NewLine, o.ToString()); // truth: page_offset_base
        Assert.Equal(2, CommandLine.Run(["rd", "linux_banner", "-w", "3", "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.Amd64Kdump)], new StringWriter(), new StringWriter()));
    }
}

public class SplitSetTests
{
    [Fact]
    public void A_makedumpfile_split_set_opens_as_one_image()
    {
        Assert.True(File.Exists("/usr/sbin/makedumpfile") || File.Exists("/usr/bin/makedumpfile"), "makedumpfile (Debian package makedumpfile) is needed to write a split set");
        var elf = Fixtures.Get(Dumps.Amd64KdumpElf);
        var dir = Directory.CreateTempSubdirectory("kvmtyped-splitset-");
        try
        {
            var parts = new[] { Path.Combine(dir.FullName, "part1"), Path.Combine(dir.FullName, "part2"), Path.Combine(dir.FullName, "part3") };
            using (var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("makedumpfile", ["--split", "-c", "-d", "31", elf, .. parts]) { RedirectStandardOutput = true, RedirectStandardError = true })!)
            {
                p.StandardOutput.ReadToEnd();
                var err = p.StandardError.ReadToEnd();
                Assert.True(p.WaitForExit(120_000), "makedumpfile did not finish");
                Assert.True(p.ExitCode == 0, err);
            }
            var map = Fixtures.Get(Dumps.Amd64Map);
            using var whole = Kvm.Open(map, elf);
            using var set = Kvm.Open(map, parts[0], options: new KvmOpenOptions { SplitFiles = [parts[1], parts[2]] });
            Assert.Equal(whole.KaslrOffset, set.KaslrOffset);
            var a = new byte[4096];
            var b = new byte[4096];
            var compared = 0;
            foreach (var r in set.Physical.Ranges)
            {
                for (var pa = r.Start; pa + 4096 <= r.End; pa += 4096 * 5)
                {
                    if (!set.Physical.TryRead(pa, a, out _))
                        continue;
                    whole.ReadPhysical(pa, b);
                    Assert.True(a.AsSpan().SequenceEqual(b), $"page 0x{pa:x}");
                    compared++;
                }
            }
            Assert.True(compared > 1000, $"{compared} pages");
            // Each part alone lacks the others' pages; the CLI opens the set with --part.
            var o = new StringWriter();
            Assert.Equal(0, CommandLine.Run(["rd", "linux_banner", "-s", "-n", map, "-c", parts[0], "--part", parts[1], "--part", parts[2]], o, new StringWriter()));
            Assert.Equal(Truth.Load("amd64/kdump-kaslr").LinuxBanner, o.ToString().TrimEnd());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

public class StructCliTests
{
    public static TheoryData<string, string, string, string?> Dumps3 => new()
    {
        { "amd64/nokaslr", Dumps.NoKaslrElf, Dumps.Amd64Map, null },
        { "amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Vmlinux, null },
        { "i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Map, "i386/vmlinux-6.1.0-50-686-pae.btf" },
    };

    [Theory]
    [MemberData(nameof(Dumps3))]
    public void Struct_prints_members_with_values_from_the_kernels_btf(string folder, string core, string map, string? btf)
    {
        var truth = Truth.Load(folder);
        string[] files = ["-n", Fixtures.Get(map), "-c", Fixtures.Get(core), .. btf is null ? Array.Empty<string>() : ["--btf", Fixtures.Get(btf)]];
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.True(CommandLine.Run(["struct", "uts_namespace", "init_uts_ns", .. files], o, e) == 0, e.ToString());
        Assert.Contains($"    release = \"{truth.Release}\",", o.ToString());
        Assert.StartsWith("struct uts_namespace 0x", o.ToString());

        o = new StringWriter();
        Assert.True(CommandLine.Run(["struct", "task_struct", "init_task", "--json", .. files], o, e) == 0, e.ToString());
        using var doc = JsonDocument.Parse(o.ToString());
        var v = doc.RootElement.GetProperty("value");
        Assert.Equal("swapper/0", v.GetProperty("comm").GetString());
        Assert.Equal(0, v.GetProperty("pid").GetInt32());
        Assert.StartsWith("0x", v.GetProperty("tasks").GetProperty("next").GetString());

        o = new StringWriter();
        Assert.True(CommandLine.Run(["struct", "list_head", "init_task", "-o", .. files], o, e) == 0, e.ToString());
        Assert.Contains("[0x0] next = 0x", o.ToString());
        Assert.Contains($"[0x{(folder.StartsWith("i386", StringComparison.Ordinal) ? 4 : 8):x}] prev = 0x", o.ToString());

        Assert.Equal(1, CommandLine.Run(["struct", "no_such_struct_xyz", "init_task", .. files], new StringWriter(), e = new StringWriter()));
        Assert.Contains("no struct or union \"no_such_struct_xyz\"", e.ToString());
    }
}

public class RdJsonTests
{
    [Fact]
    public void Rd_json_gives_hex_or_string()
    {
        var truth = Truth.Load("amd64/kdump-kaslr");
        string[] files = ["-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.Amd64Kdump)];
        var o = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["rd", "linux_banner", "-l", "5", "--json", .. files], o, new StringWriter()));
        using (var doc = JsonDocument.Parse(o.ToString()))
        {
            Assert.Equal($"0x{truth.RuntimeSymbols().First(s => s.Name == "linux_banner").Address:x}", doc.RootElement.GetProperty("address").GetString());
            Assert.Equal("4c696e7578", doc.RootElement.GetProperty("hex").GetString()); // "Linux"
        }
        o = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["rd", "linux_banner", "-s", "--json", .. files], o, new StringWriter()));
        using (var doc = JsonDocument.Parse(o.ToString()))
            Assert.Equal(truth.LinuxBanner + "\n", doc.RootElement.GetProperty("string").GetString());
    }
}

public class CliLimitsTests
{
    [Fact]
    public void Huge_lengths_and_bad_names_are_usage_errors()
    {
        string[] files = ["-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386Kdump)];
        var e = new StringWriter();
        Assert.Equal(2, CommandLine.Run(["rd", "linux_banner", "-s", "-l", "2147483647", .. files], new StringWriter(), e));
        Assert.Contains("too large", e.ToString());
        Assert.Equal(2, CommandLine.Run(["rd", "0x1000", "--phys", "-s", "-l", "2147483647", .. files], new StringWriter(), new StringWriter()));
        Assert.Equal(2, CommandLine.Run(["split", Path.GetTempPath(), "--name", ".", .. files], new StringWriter(), new StringWriter()));
        e = new StringWriter();
        Assert.Equal(1, CommandLine.Run(["info", "-n", "", "-c", Fixtures.Get(Dumps.I386Kdump)], new StringWriter(), e));
        Assert.StartsWith("kvmtyped: ", e.ToString());
    }
}
