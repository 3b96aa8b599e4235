using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Open;

public class OpenContractTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Lp64_core_with_elf_or_map_namelist_reads_through_segment_addresses(bool elfNamelist)
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build());
        var nl = elfNamelist ? d.File("vmlinux", Images.Lp64Kernel().Build()) : d.Text("System.map", Images.Lp64Map);
        using var kvm = Kvm.Open(nl, core);
        Assert.Equal(DataModel.LP64, kvm.DataModel);
        Assert.Equal(KernelMachine.X86_64, kvm.Machine);
        Assert.Equal("9.9.9-test", kvm.Release);
        Assert.Equal(Images.Lp64Text + 0x100, kvm.SymbolAddress("linux_banner"));
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
        Assert.True(kvm.TryFindSymbol(Images.Lp64Text + 0x123, out var name, out var off));
        Assert.Equal(("linux_banner", 0x23UL), (name, off));
        Assert.Equal(elfNamelist ? "ELF" : "System.map", kvm.Symbols.Kind);
    }

    [Fact]
    public void Ilp32_core_with_elf32_namelist_is_ilp32()
    {
        using var d = new TempDir();
        using var kvm = Kvm.Open(d.File("vmlinux", Images.Ilp32Kernel().Build()), d.File("vmcore", Images.Ilp32Core().Build()));
        Assert.Equal(DataModel.ILP32, kvm.DataModel);
        Assert.Equal(4, kvm.PointerSize);
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
        Assert.Equal("ELF32 core", kvm.FormatName);
    }

    [Fact]
    public void Qemu_elf64_core_with_em386_and_i386_namelist_is_accepted_as_ilp32()
    {
        using var d = new TempDir();
        using var kvm = Kvm.Open(d.Text("System.map", Images.Ilp32Map), d.File("vmcore", Images.QemuI386Core().Build()));
        Assert.Equal(DataModel.ILP32, kvm.DataModel);
        Assert.Equal(KernelMachine.X86, kvm.Machine);
        Assert.Equal("ELF64 core", kvm.FormatName);
        // i386 lowmem: virt - PAGE_OFFSET = phys.
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
    }

    [Fact]
    public void I386_namelist_with_x86_64_core_is_refused_naming_both()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Lp64Core().Build());
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(d.File("vmlinux", Images.Ilp32Kernel().Build()), core));
        Assert.Equal($"{core} is a 64-bit core file - cannot examine with a 32-bit namelist", e.Message);
        e = Assert.Throws<KvmOpenException>(() => Kvm.Open(d.Text("System.map", Images.Ilp32Map), core));
        Assert.Equal($"{core} is a 64-bit core file - cannot examine with a 32-bit namelist", e.Message);
    }

    [Fact]
    public void X86_64_namelist_with_i386_core_is_refused_naming_both()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Ilp32Core().Build());
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(d.File("vmlinux", Images.Lp64Kernel().Build()), core));
        Assert.Equal($"{core} is a 32-bit core file - cannot examine with a 64-bit namelist", e.Message);
        var qemu = d.File("qemu", Images.QemuI386Core().Build());
        e = Assert.Throws<KvmOpenException>(() => Kvm.Open(d.Text("System.map", Images.Lp64Map), qemu));
        Assert.Equal($"{qemu} is a 32-bit core file - cannot examine with a 64-bit namelist", e.Message);
    }

    [Fact]
    public void Typed_api_restricted_to_lp64_refuses_a_32_bit_core()
    {
        using var d = new TempDir();
        var core = d.File("vmcore", Images.Ilp32Core().Build());
        var nl = d.Text("System.map", Images.Ilp32Map);
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(nl, core, options: new KvmOpenOptions { SupportedModels = [DataModel.LP64] }));
        Assert.Equal($"{core} is a 32-bit core file - cannot examine with 64-bit libkvm", e.Message);
        using var ok = Kvm.Open(nl, core, options: new KvmOpenOptions { SupportedModels = [DataModel.LP64, DataModel.ILP32] });
        Assert.Equal(DataModel.ILP32, ok.DataModel);
    }

    [Fact]
    public void Live_kernel_needs_the_process_model_to_equal_the_kernel_model()
    {
        using var d = new TempDir();
        var fakeKcore = d.File("kcore", Images.Ilp32Core().Build());
        var syms = d.Text("kallsyms", Images.Ilp32Map);
        var options = new KvmOpenOptions { LiveCorePath = fakeKcore, LiveSymbolsPath = syms, ProcessModel = DataModel.LP64 };
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(null, null, options: options));
        Assert.Equal($"{fakeKcore} is a 32-bit core file - the live kernel cannot be examined by a 64-bit process", e.Message);
        using var kvm = Kvm.Open(null, null, options: options with { ProcessModel = DataModel.ILP32 });
        Assert.True(kvm.IsLive);
        Assert.Equal("kallsyms", kvm.Symbols.Kind);
    }

    [Fact]
    public void Live_kernel_without_kcore_gives_a_clear_error()
    {
        var missing = "/nonexistent-dir/kcore";
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(null, null, options: new KvmOpenOptions { LiveCorePath = missing }));
        Assert.StartsWith($"{missing}: No such file or directory - the live kernel cannot be examined", e.Message);
        Assert.Equal("/proc/kcore", new KvmOpenOptions().LiveCorePath);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0x40)]
    [InlineData(0x4000)]
    [InlineData(2 | 0x100 | 0x8)]
    public void Illegal_flags_are_refused(int flag)
    {
        using var d = new TempDir();
        var e = Assert.Throws<KvmOpenException>(() => Kvm.Open(d.Text("map", Images.Lp64Map), d.File("core", Images.Lp64Core().Build()), flags: (KvmOpenFlags)flag));
        Assert.Equal($"illegal flag 0x{flag:x} to kvm_open()", e.Message);
    }

    [Fact]
    public void Errstr_prefixes_the_message_on_stderr_and_null_is_silent()
    {
        using var d = new TempDir();
        var writer = new StringWriter();
        var missing = Path.Combine(d.Path, "nope");
        Assert.Throws<KvmOpenException>(() => Kvm.Open(missing, missing, errstr: "myps", options: new KvmOpenOptions { ErrorWriter = writer }));
        Assert.Equal($"myps: {missing}: No such file or directory{Environment.NewLine}", writer.ToString());
        var silent = new StringWriter();
        Assert.Throws<KvmOpenException>(() => Kvm.Open(missing, missing, errstr: null, options: new KvmOpenOptions { ErrorWriter = silent }));
        Assert.Equal("", silent.ToString());
    }

    [HostKallsymsFact]
    public void Kallsyms_of_the_running_kernel_is_the_default_namelist()
    {
        Assert.Equal(Host.KallsymsPath, new KvmOpenOptions().LiveSymbolsPath);
        var first = File.ReadLines("/proc/kallsyms").First().Split(' ');
        using var d = new TempDir();
        // A core of the running kernel's model (LP64 on these machines), standing in for /proc/kcore: no corefile is
        // named, so this is the live-kernel open (a named core without a namelist reads the dump's own kallsyms).
        var core = d.File("core", Images.Lp64Core().Build());
        using var kvm = Kvm.Open(null, null, options: new KvmOpenOptions { LiveCorePath = core });
        Assert.Equal("kallsyms", kvm.Symbols.Kind);
        Assert.Equal("/proc/kallsyms", kvm.NamelistPath);
        Assert.True(kvm.Symbols.Count > 10_000, $"only {kvm.Symbols.Count} symbols");
        Assert.True(kvm.Symbols.TryLookup(first[2].TrimEnd(), out var s));
        Assert.Equal(Convert.ToUInt64(first[0], 16), s.Address);
    }

    [Fact]
    public void Swapfile_is_checked_and_optional()
    {
        using var d = new TempDir();
        var nl = d.Text("map", Images.Lp64Map);
        var core = d.File("core", Images.Lp64Core().Build());
        var swap = new byte[8192];
        "SWAPSPACE2"u8.CopyTo(swap.AsSpan(4096 - 10));
        using (var kvm = Kvm.Open(nl, core, d.File("swap", swap)))
            Assert.EndsWith("swap", kvm.SwapPath);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(nl, core, d.File("notswap", new byte[8192])));
        Assert.Contains("not a Linux swap area", e.Message);
    }

    /// <summary>One base type catches every deliberate error: a closed handle too; a failed write is not a read error.</summary>
    [Fact]
    public void Every_deliberate_error_is_a_KvmException_and_writes_fail_as_writes()
    {
        using var d = new TempDir();
        var kvm = Kvm.Open(d.Text("map", Images.Lp64Map), d.File("core", Images.Lp64Core().Build()));
        var write = Assert.Throws<KvmWriteException>(() => kvm.WritePhysical(Images.Lp64Phys, new byte[] { 1 }));
        Assert.IsAssignableFrom<KvmException>(write);
        Assert.IsNotAssignableFrom<KvmReadException>(write);
        Assert.Equal(Images.Lp64Phys, write.Address);
        Assert.IsAssignableFrom<KvmException>(Assert.Throws<KvmReadException>(() => kvm.ReadVirtual(0x10, new byte[8])));
        kvm.Close();
        var closed = Assert.Throws<KvmClosedException>(() => kvm.SymbolAddress("linux_banner"));
        Assert.IsAssignableFrom<KvmException>(closed);
        Assert.Equal("the kernel image has been closed", closed.Message);
    }

    [Fact]
    public void Close_returns_0_then_minus_1_and_every_call_after_fails_cleanly()
    {
        using var d = new TempDir();
        var kd = KvmTyped.Compat.Libkvm.kvm_open(d.Text("map", Images.Lp64Map), d.File("core", Images.Lp64Core().Build()), null, KvmTyped.Compat.Libkvm.O_RDONLY, null);
        Assert.NotNull(kd);
        Assert.Equal(0, KvmTyped.Compat.Libkvm.kvm_close(kd));
        Assert.Equal(-1, KvmTyped.Compat.Libkvm.kvm_close(kd));
        Assert.Equal(-1, KvmTyped.Compat.Libkvm.kvm_close(null));
        Assert.Equal(-1, KvmTyped.Compat.Libkvm.kvm_kread(kd, Images.Lp64Text, new byte[8]));
        Assert.Equal(-1, KvmTyped.Compat.Libkvm.kvm_nlist(kd, [new("linux_banner"), new(null)]));
        Assert.Equal(-1, KvmTyped.Compat.Libkvm.kvm_kwrite(kd, Images.Lp64Text, new byte[8]));
        Assert.Throws<KvmClosedException>(() => kd!.Kvm.SymbolAddress("linux_banner"));
        Assert.Throws<KvmClosedException>(() => kd!.Kvm.ReadVirtual(Images.Lp64Text, new byte[8]));
        Assert.Throws<KvmClosedException>(() => kd!.Kvm.Physical);
        Assert.True(kd!.Kvm.IsClosed);
    }
}

public class RawImageTests
{
    [Fact]
    public void Raw_image_maps_file_offset_to_physical_address_and_takes_the_namelist_model()
    {
        using var d = new TempDir();
        var path = Path.Combine(d.Path, "mem.raw");
        using (var f = File.Create(path))
        {
            f.SetLength((long)Images.Lp64Phys + 0x2000); // sparse
            f.Position = (long)Images.Lp64Phys;
            f.Write(Images.Page());
        }
        var raw = new KvmOpenOptions { RawImage = true };
        using var kvm = Kvm.Open(d.Text("map", Images.Lp64Map), path, options: raw);
        Assert.Equal("raw", kvm.FormatName);
        Assert.Equal(DataModel.LP64, kvm.DataModel);
        Assert.Equal(Images.Banner, kvm.ReadCString(kvm.SymbolAddress("linux_banner")));
        Assert.Throws<KvmReadException>(() => kvm.ReadPhysical(Images.Lp64Phys + 0x2000, new byte[1]));
        using var kvm32 = Kvm.Open(d.Text("map32", Images.Ilp32Map), path, options: raw);
        Assert.Equal(DataModel.ILP32, kvm32.DataModel);
        Assert.Equal(Images.Banner, kvm32.ReadCString(kvm32.SymbolAddress("linux_banner")));
    }

    [Fact]
    public void A_file_of_no_known_format_is_refused_unless_a_raw_image_is_asked_for()
    {
        using var d = new TempDir();
        var path = d.File("mem", new byte[8192]);
        var map = d.Text("map", Images.Lp64Map);
        var e = Assert.Throws<KvmFormatException>(() => Kvm.Open(map, path));
        Assert.Equal($"{path}: not a known dump format (tried ELF core, kdump-compressed (plain or flattened), LiME/AVML); a raw physical memory image is read only when asked for (KvmOpenOptions.RawImage)", e.Message);
        var small = d.File("small", new byte[100]);
        var tooSmall = Assert.Throws<KvmFormatException>(() => Kvm.Open(map, small, options: new KvmOpenOptions { RawImage = true }));
        Assert.Contains("too small for a raw memory image", tooSmall.Message, StringComparison.Ordinal);
    }
}
