using KvmTyped.IO;
using KvmTyped.Symbols;

namespace KvmTyped.Tests.Symbols;

public class SymbolTableTests
{
    private static TextSymbolTable Map(TempDir d, string text) => TextSymbolTable.OpenMap(RandomAccessFile.Open(d.Text("map", text), writable: false));

    [Fact]
    public void System_map_gives_model_by_address_width_and_parses_lazily()
    {
        using var d = new TempDir();
        using var lp64 = Map(d, Images.Lp64Map);
        Assert.Equal(DataModel.LP64, lp64.DataModel);
        using var ilp32 = TextSymbolTable.OpenMap(RandomAccessFile.Open(d.Text("map32", Images.Ilp32Map), writable: false));
        Assert.Equal(DataModel.ILP32, ilp32.DataModel);
        // A bad line far down is only found when the symbols are first used.
        using var lazy = TextSymbolTable.OpenMap(RandomAccessFile.Open(d.Text("lazy", Images.Lp64Map + "garbage\n"), writable: false));
        Assert.Throws<KvmFormatException>(() => lazy.Count);
    }

    [Fact]
    public void Kallsyms_module_suffix_and_types_are_read()
    {
        using var d = new TempDir();
        var path = d.Text("kallsyms", "ffffffff81000000 T _stext\nffffffffc0a01000 t helper_fn\t[some_mod]\nffffffffc0a02000 d mod_data\t[some_mod]\n");
        using var t = TextSymbolTable.OpenKallsyms(path);
        Assert.Equal(3, t.Count);
        Assert.True(t.TryLookup("helper_fn", out var s));
        Assert.Equal((0xffffffffc0a01000UL, 't'), (s.Address, s.Type));
        Assert.False(t.TryLookup("helper_fn\t[some_mod]", out _));
    }

    [Fact]
    public void Nearest_takes_the_greatest_address_not_above_and_the_first_of_equal_addresses()
    {
        using var d = new TempDir();
        using var t = Map(d, "ffffffff81000000 T _text\nffffffff81000000 T _stext\nffffffff81000100 T a\nffffffff81000200 T b\n");
        Assert.True(t.TryFindNearest(0xffffffff81000050, out var s));
        Assert.Equal("_text", s.Name);
        Assert.True(t.TryFindNearest(0xffffffff81000200, out s));
        Assert.Equal("b", s.Name);
        Assert.True(t.TryFindNearest(0xffffffff810001ff, out s));
        Assert.Equal("a", s.Name);
        Assert.True(t.TryFindNearest(ulong.MaxValue, out s));
        Assert.Equal("b", s.Name);
        Assert.False(t.TryFindNearest(0xffffffff80ffffff, out _));
    }

    [Fact]
    public void A_global_name_wins_over_a_local_one_of_the_same_name()
    {
        using var d = new TempDir();
        using var t = Map(d, "ffffffff81000000 t dup\nffffffff81000100 T dup\nffffffff81000200 t dup\n");
        Assert.True(t.TryLookup("dup", out var s));
        Assert.Equal(0xffffffff81000100UL, s.Address);
    }

    [Fact]
    public void Elf_symbols_get_nm_type_letters_and_skip_file_and_section_symbols()
    {
        using var d = new TempDir();
        var w = ElfWriter.Kernel64()
            .AddSymbol("global_data", 0x1000, 0x11)
            .AddSymbol("local_data", 0x2000, 0x01)
            .AddSymbol("weak_fn", 0x3000, 0x22)
            .AddSymbol("abs_sym", 0x4000, 0x10, 0xfff1)
            .AddSymbol("file.c", 0, 0x04, 0xfff1)
            .AddSymbol("", 0x5000, 0x03)
            .AddSymbol("undef", 0, 0x10, 0);
        using var kvm = Kvm.Open(d.File("vmlinux", w.Build()), d.File("core", Images.Lp64Core().Build()));
        Assert.Equal(4, kvm.Symbols.Count);
        Assert.True(kvm.Symbols.TryLookup("global_data", out var s) && s.Type == 'D');
        Assert.True(kvm.Symbols.TryLookup("local_data", out s) && s.Type == 'd');
        Assert.True(kvm.Symbols.TryLookup("weak_fn", out s) && s.Type == 'V');
        Assert.True(kvm.Symbols.TryLookup("abs_sym", out s) && s.Type == 'A');
        Assert.False(kvm.Symbols.TryLookup("file.c", out _));
        Assert.False(kvm.Symbols.TryLookup("undef", out _));
    }
}
