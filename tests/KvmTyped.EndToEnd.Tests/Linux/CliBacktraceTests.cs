using System.Text.Json;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>`bt`, `mod`, and module-aware `sym`/`nlist` on the panicked QEMU dump and the kdumps.</summary>
public class CliBacktraceTests
{
    private static string[] Panic(params string[] args) => [.. args, "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(BacktraceTruthTests.PanicDump)];

    private static string[] I386(params string[] args) =>
        [.. args, "-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386Kdump), "--btf", Fixtures.Get(DumpCase.I386Btf)];

    [Fact]
    public void Bt_without_arguments_shows_the_panicking_task_as_crash_does()
    {
        var (code, o, e) = Run(Panic("bt"));
        Assert.Equal(0, code);
        Assert.Equal("", e);
        var lines = o.TrimEnd().Split(Environment.NewLine);
        Assert.Matches("^PID: 1 +TASK: ffff[0-9a-f]{12}  CPU: 1    COMMAND: \"init\"  \\(panic\\)$", lines[0]);
        Assert.Matches("^  #0 \\[ffff[0-9a-f]{12}\\] delay_tsc\\+0x[0-9a-f]+/0xa0 at ffffffff[0-9a-f]{8}$", lines[1]);
        Assert.Contains(lines, l => l.Contains("] panic+0x", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("] entry_SYSCALL_64_after_hwframe+0x6e/0xd8 at ", StringComparison.Ordinal));
        // The user registers the trace ends at, as crash prints an exception frame.
        Assert.Contains("      RIP: 000000000047b7a0    RSP: 00007ffccc571588 RFLAGS: 0000000000000202", lines);
        Assert.Contains("    ORIG_RAX: 0000000000000001  CS: 0033  SS: 002b", lines);
    }

    [Fact]
    public void Bt_json_has_the_documented_keys()
    {
        var (code, o, _) = Run(Panic("bt", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var t = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal((1, "init", 1, true, true, "ORC"), (t.GetProperty("pid").GetInt32(), t.GetProperty("comm").GetString(), t.GetProperty("cpu").GetInt32(),
            t.GetProperty("active").GetBoolean(), t.GetProperty("crashed").GetBoolean(), t.GetProperty("unwinder").GetString()));
        Assert.Equal("user mode", t.GetProperty("end").GetString());
        Assert.Equal("0x47b7a0", t.GetProperty("userRegisters").GetProperty("ip").GetString());
        var frames = t.GetProperty("frames").EnumerateArray().ToList();
        var panic = frames.Single(f => f.GetProperty("symbol").GetString() == "panic");
        Assert.Equal(0x2f4, panic.GetProperty("size").GetInt32());
        Assert.StartsWith("0xffffffff", panic.GetProperty("address").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("0xffff", panic.GetProperty("sp").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, panic.GetProperty("module").ValueKind);
        Assert.True(panic.GetProperty("reliable").GetBoolean());
        Assert.False(panic.GetProperty("exact").GetBoolean());
        Assert.Equal("task", panic.GetProperty("stack").GetString());
        Assert.Equal("0x" + frames[0].GetProperty("address").GetString()![2..], frames[0].GetProperty("registers").GetProperty("ip").GetString());
    }

    [Fact]
    public void Bt_a_shows_each_cpu_and_marks_the_stack_switch()
    {
        var (code, o, _) = Run(Panic("bt", "-a"));
        Assert.Equal(0, code);
        var traces = o.Split(Environment.NewLine + Environment.NewLine);
        Assert.Equal(2, traces.Length);
        Assert.Contains("COMMAND: \"swapper/0\"", traces[0], StringComparison.Ordinal);
        Assert.Contains(" --- <IRQ stack> ---", traces[0], StringComparison.Ordinal);
        Assert.Contains("COMMAND: \"init\"  (panic)", traces[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Bt_takes_pids_and_task_addresses_and_names_what_it_cannot_find()
    {
        var (code, o, _) = Run(Panic("bt", "2", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var kthreadd = doc.RootElement[0];
        Assert.Equal("kthreadd", kthreadd.GetProperty("comm").GetString());
        Assert.Equal("end of stack", kthreadd.GetProperty("end").GetString());
        Assert.Equal("its saved thread.sp", kthreadd.GetProperty("start").GetString());
        var task = kthreadd.GetProperty("task").GetString()!;
        var (acode, ao, _) = Run(Panic("bt", task));
        Assert.Equal(0, acode);
        Assert.Contains("COMMAND: \"kthreadd\"", ao, StringComparison.Ordinal);
        Assert.Contains("] kthreadd+0x2bc/0x2d0 at ", ao, StringComparison.Ordinal);
        var (bad, bo, be) = Run(Panic("bt", "99999", "2"));
        Assert.Equal(1, bad);
        Assert.Contains("kthreadd", bo, StringComparison.Ordinal);
        Assert.Equal($"kvmtyped: no task with pid 99999{Environment.NewLine}", be);
    }

    [Fact]
    public void Bt_all_lists_every_task_and_a_zombie_says_it_has_no_stack()
    {
        var (code, o, _) = Run(Panic("bt", "--all", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var traces = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(64, traces.Count);
        var zombie = traces.Single(t => t.GetProperty("comm").GetString() == "labzombie" && t.GetProperty("end").GetString() == "error");
        Assert.Equal("the task has no kernel stack (it has exited)", zombie.GetProperty("reason").GetString());
        Assert.All(traces.Where(t => t.GetProperty("pid").GetInt32() != zombie.GetProperty("pid").GetInt32()), t => Assert.NotEqual("error", t.GetProperty("end").GetString()));
    }

    [Fact]
    public void Bt_on_the_i386_kdump_walks_frame_pointers_to_sysenter()
    {
        var (code, o, _) = Run(I386("bt"));
        Assert.Equal(0, code);
        Assert.Contains("COMMAND: \"init\"  (panic)", o, StringComparison.Ordinal);
        Assert.Contains("] entry_SYSENTER_32+0x98/0xfb at c7932238", o, StringComparison.Ordinal);
        Assert.Contains("      EIP: b7fae559    ESP: bff92a10 EFLAGS: 00000246", o, StringComparison.Ordinal);
        var (jcode, jo, _) = Run(I386("bt", "--json"));
        Assert.Equal(0, jcode);
        using var doc = JsonDocument.Parse(jo);
        Assert.Equal("frame pointers", doc.RootElement[0].GetProperty("unwinder").GetString());
    }

    [Fact]
    public void Mod_lists_the_modules_and_their_symbols()
    {
        var (code, o, _) = Run(Panic("mod"));
        Assert.Equal(0, code);
        var lines = o.TrimEnd().Split(Environment.NewLine);
        Assert.Equal("MODULE            NAME         BASE                  SIZE  STATE      SYMBOLS", lines[0]);
        Assert.Matches("^ffffffffc0569200  fat          ffffffffc0557000     90112  Live       [0-9]+$", lines[3]);
        Assert.Equal(5, lines.Length);
        var (scode, so, _) = Run(Panic("mod", "vfat", "-S"));
        Assert.Equal(0, scode);
        Assert.Contains("vfat:", so, StringComparison.Ordinal);
        Assert.Matches("ffffffffc056[0-9a-f]{4} [tT] vfat_", so);
        var (jcode, jo, _) = Run(Panic("mod", "--json"));
        Assert.Equal(0, jcode);
        using var doc = JsonDocument.Parse(jo);
        var fat = doc.RootElement.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "fat");
        Assert.Equal(("0xffffffffc0557000", 90112, "Live"), (fat.GetProperty("base").GetString(), fat.GetProperty("size").GetInt32(), fat.GetProperty("state").GetString()));
        Assert.Equal("text", fat.GetProperty("memory")[0].GetProperty("kind").GetString());
        Assert.True(fat.GetProperty("symbolCount").GetInt32() > 100);
        var (mcode, _, me) = Run(Panic("mod", "ext4"));
        Assert.Equal(1, mcode);
        Assert.Equal($"kvmtyped: no module \"ext4\" is loaded{Environment.NewLine}", me);
    }

    [Fact]
    public void Sym_and_nlist_know_module_symbols()
    {
        var (code, o, _) = Run(Panic("nlist", "fat_fill_super", "init_task"));
        Assert.Equal(0, code);
        var lines = o.TrimEnd().Split(Environment.NewLine);
        Assert.EndsWith(" fat_fill_super [fat]", lines[0], StringComparison.Ordinal);
        Assert.EndsWith(" init_task", lines[1], StringComparison.Ordinal);
        var address = lines[0].Split(' ')[0];
        var (scode, so, _) = Run(Panic("sym", "0x" + address, (Convert.ToUInt64(address, 16) + 0x1c).ToString("x", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(0, scode);
        Assert.Matches($"^{address} fat_fill_super\\+0x0/0x[0-9a-f]+ \\[fat\\]\\r?\\n[0-9a-f]+ fat_fill_super\\+0x1c/0x[0-9a-f]+ \\[fat\\]", so);
        var (jcode, jo, _) = Run(Panic("sym", address, "--json"));
        Assert.Equal(0, jcode);
        using var doc = JsonDocument.Parse(jo);
        Assert.Equal("fat", doc.RootElement[0].GetProperty("module").GetString());
        var (ncode, _, ne) = Run(Panic("nlist", "no_such_symbol_xyz"));
        Assert.Equal(1, ncode);
        Assert.Contains("no symbol \"no_such_symbol_xyz\" or any module", ne, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(BacktraceTruthTests.PanicDump)]
    [InlineData(Dumps.Amd64Kdump)]
    public void Without_a_namelist_bt_and_mod_print_what_they_print_with_the_system_map(string dump)
    {
        // The dump's own kallsyms (CONFIG_KALLSYMS_ALL) names every frame as the System.map does, lengths included.
        foreach (var command in new[] { new[] { "bt", "--all" }, ["mod", "-S"] })
        {
            var (code, alone, e) = Run([.. command, "-c", Fixtures.Get(dump)]);
            Assert.True(code == 0, e);
            var (mcode, withMap, _) = Run([.. command, "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(dump)]);
            Assert.Equal(0, mcode);
            Assert.Contains(command[0] == "bt" ? "] panic+0x" : "  Live  ", alone, StringComparison.Ordinal);
            Assert.Equal(withMap, alone);
        }
    }

    [Fact]
    public void Bt_on_an_arm64_kernel_prints_the_panic_trace_with_its_user_registers_and_mod_lists_its_modules()
    {
        string[] arm64 = ["-n", Fixtures.Get(Dumps.Arm64Map), "-c", Fixtures.Get(Dumps.Arm64Kdump)];
        var (code, o, e) = Run(["bt", .. arm64]);
        Assert.Equal((0, ""), (code, e));
        var lines = o.Split(Environment.NewLine);
        Assert.StartsWith("PID: 1        TASK: ", lines[0], StringComparison.Ordinal);
        Assert.EndsWith("COMMAND: \"init\"  (panic)", lines[0], StringComparison.Ordinal);
        Assert.Matches(@"^ +#\d+ \[[0-9a-f]{16}\] sysrq_handle_crash\+0x20/0x20 at [0-9a-f]{16}$", lines.Single(l => l.Contains("sysrq_handle_crash", StringComparison.Ordinal)));
        // The trace ends at el0t_64_sync with the user-mode registers, arm64's names, as crash prints them.
        var last = Array.FindIndex(lines, l => l.Contains("] el0t_64_sync+0x18c/0x190 at ", StringComparison.Ordinal));
        Assert.True(last > 0, o);
        Assert.Matches(@"^ +PC: [0-9a-f]{16} +LR: [0-9a-f]{16} +SP: [0-9a-f]{16}$", lines[last + 1]);
        Assert.Matches(@"^ +X29: [0-9a-f]{16} +X28: [0-9a-f]{16} +X27: [0-9a-f]{16}$", lines[last + 2]);
        Assert.Matches(@"^    PSTATE: [0-9a-f]{8}$", lines[last + 12]);
        var (mcode, mo, _) = Run(["mod", .. arm64]);
        Assert.Equal(0, mcode);
        Assert.Contains("  fat  ", mo, StringComparison.Ordinal);
    }
}
