using System.Globalization;
using System.Text.Json;
using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using Xunit.Abstractions;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>Modules read from the dump against what the guest's /sys/module said, and their in-memory symbols against
/// the real .ko files from Debian's linux-image-6.1.0-56-amd64, placed where the guest loaded their sections.</summary>
public class ModuleTruthTests(ITestOutputHelper output)
{
    private sealed record TruthModule(string Name, ulong Base, ulong Size, string State, Dictionary<string, ulong> Sections);

    private static List<TruthModule> Truth(string folder = "amd64/panic-kaslr")
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, folder, "truth.json")));
        return
        [
            .. doc.RootElement.GetProperty("modules").EnumerateArray().Select(m => new TruthModule(
                m.GetProperty("name").GetString()!, Hex(m.GetProperty("base").GetString()!), m.GetProperty("size").GetUInt64(), m.GetProperty("state").GetString()!,
                m.GetProperty("sections").EnumerateObject().ToDictionary(p => p.Name, p => Hex(p.Value.GetString()!)))),
        ];
    }

    private static ulong Hex(string s) => ulong.Parse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    private static Kvm Open() => Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(BacktraceTruthTests.PanicDump));

    [Theory]
    [InlineData("amd64/panic-kaslr", BacktraceTruthTests.PanicDump, Dumps.Amd64Map)]
    [InlineData("arm64", Dumps.Arm64Kdump, Dumps.Arm64Map)]
    public void The_module_list_is_the_guest_s(string folder, string dump, string map)
    {
        using var kvm = Kvm.Open(Fixtures.Get(map), Fixtures.Get(dump));
        var modules = KernelModules.For(kvm).List();
        var truth = Truth(folder);
        Assert.Equal(truth.Select(t => (t.Name, t.Base, t.Size, t.State)), modules.Select(m => (m.Name, m.Base, m.Size, m.State)));
        foreach (var (m, t) in modules.Zip(truth))
        {
            // The core text starts the module; every core section lies in the module's memory (.init.* and the full
            // .symtab/.strtab the loader used are init memory, freed once the module is live).
            Assert.Equal(t.Sections[".text"], m.Memory[0].Base);
            Assert.Equal("text", m.Memory[0].Kind);
            foreach (var (name, address) in t.Sections.Where(s => !s.Key.StartsWith(".init", StringComparison.Ordinal) && s.Key is not (".symtab" or ".strtab")))
                Assert.True(m.Memory.Any(p => address >= p.Base && address < p.Base + p.Size), $"{m.Name} {name} at 0x{address:x} is outside its memory");
            Assert.NotEmpty(m.Symbols);
        }
    }

    [Theory]
    [InlineData("fat")]
    [InlineData("vfat")]
    [InlineData("nls_cp437")]
    [InlineData("qemu_fw_cfg")]
    public void Module_code_is_named_as_the_ko_file_names_it(string name)
    {
        using var kvm = Open();
        var symbolizer = KernelSymbolizer.For(kvm);
        var sections = Truth().Single(t => t.Name == name).Sections;
        var (functions, addresses) = ModuleKoCheck.Check(symbolizer, name, Path.Combine(Fixtures.Root, "amd64/panic-kaslr", name + ".ko"), sections);
        output.WriteLine($"{name}: {functions} functions, {addresses} addresses named as the .ko names them");
    }

    [Fact]
    public void Addresses_outside_the_image_and_every_module_say_so()
    {
        using var kvm = Open();
        var symbolizer = KernelSymbolizer.For(kvm);
        var init = kvm.SymbolAddress("init_task");
        // A heap pointer (a task_struct in the direct map), a user address, and just past a module's end.
        var task = KernelTasks.For(kvm).List().First(t => t.Pid == 1).Address;
        var fat = KernelModules.For(kvm).List().Single(m => m.Name == "fat");
        foreach (var address in new[] { task, 0x47b7a0UL, fat.Memory.Max(p => p.Base + p.Size) })
        {
            var s = symbolizer.Symbolize(address);
            Assert.False(s.IsKnown);
            Assert.Equal("outside the kernel image and every module", s.Reason);
        }
        Assert.Equal("init_task+0x0", symbolizer.Symbolize(init).ToString().Split('/')[0]);
    }
}
