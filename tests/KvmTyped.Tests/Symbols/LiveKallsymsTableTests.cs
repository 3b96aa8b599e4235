using KvmTyped.Symbols;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.Symbols;

/// <summary>The running kernel's symbol table: the image's symbols from its memory, /proc/kallsyms only for what may be
/// a module's, and only while modules are loaded.</summary>
public class LiveKallsymsTableTests
{
    private const ulong ModuleText = 0xffffffffc0a00000;

    private static (LiveKallsymsTable Table, KallsymsWriter Writer) Table(TempDir d, bool modulesLoaded, Action? asked = null)
    {
        var writer = KallsymsImageTests.Kernel(DataModel.LP64, KallsymsAddressMode.AbsolutePerCpu, more: 20);
        var built = writer.Build();
        var kernel = KernelKallsyms.Load(built.Memory.TryReadVirtual, built.Tables, DataModel.LP64, "test.kcore");
        var file = d.Text("kallsyms", $"ffffffff81000000 T _stext\n{ModuleText:x16} t mod_init\t[mymod]\n{ModuleText + 0x40:x16} T mod_func\t[mymod]\n");
        return (new LiveKallsymsTable(file, kernel, DataModel.LP64, () => { asked?.Invoke(); return modulesLoaded; }), writer);
    }

    [Fact]
    public void The_image_symbols_come_from_memory_without_reading_the_file()
    {
        using var d = new TempDir();
        var asked = 0;
        var (table, writer) = Table(d, modulesLoaded: true, () => asked++);
        using (table)
        {
            foreach (var s in writer.Symbols.Where(s => s.Name != "dup"))
            {
                Assert.True(table.TryLookup(s.Name, out var got));
                Assert.Equal(s.Address, got.Address);
            }
            Assert.True(table.TryFindNearest(KallsymsImageTests.TextBase(DataModel.LP64) + 0x104, out var near));
            Assert.Equal("do_one_initcall", near.Name);
            Assert.True(table.TryFindNext(near.Address, out var next));
            Assert.Equal(writer.Symbols.Where(s => s.Address > near.Address).Min(s => s.Address), next.Address);
            Assert.False(table.HasReadFile);
            Assert.Equal(0, asked);
            Assert.Equal("kallsyms", table.Kind);
            Assert.Equal(writer.Symbols.Count, table.Count);
        }
    }

    [Fact]
    public void With_modules_loaded_a_module_symbol_is_found_in_the_file()
    {
        using var d = new TempDir();
        var asked = 0;
        var (table, writer) = Table(d, modulesLoaded: true, () => asked++);
        using (table)
        {
            Assert.True(table.TryLookup("mod_func", out var f));
            Assert.Equal(ModuleText + 0x40, f.Address);
            Assert.True(table.HasReadFile);
            Assert.True(table.TryFindNearest(ModuleText + 0x10, out var near));
            Assert.Equal("mod_init", near.Name);
            Assert.True(table.TryFindNext(ModuleText + 0x10, out var next));
            Assert.Equal(("mod_func", ModuleText + 0x40), (next.Name, next.Address));
            Assert.False(table.TryFindNext(ModuleText + 0x40, out _));
            Assert.False(table.TryLookup("nowhere", out _));
            Assert.Equal(1, asked);
            Assert.Equal(3, table.Count);
        }
    }

    [Fact]
    public void Without_modules_a_miss_is_a_miss_and_the_file_is_never_read()
    {
        using var d = new TempDir();
        var (table, writer) = Table(d, modulesLoaded: false);
        using (table)
        {
            Assert.False(table.TryLookup("mod_func", out _));
            Assert.True(table.TryFindNearest(ModuleText + 0x10, out var near));
            Assert.Equal(writer.Symbols.MaxBy(s => s.Address).Name, near.Name);
            Assert.False(table.TryFindNext(ModuleText + 0x10, out _));
            Assert.False(table.HasReadFile);
        }
    }
}
