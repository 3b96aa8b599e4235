using KvmTyped.IO;
using KvmTyped.Symbols;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.Symbols;

/// <summary>Addresses named as the kernel prints them: only inside the image's sections and the modules' memory,
/// func+off/len with len up to the next symbol (or the section's end), return addresses looked up at address − 1.</summary>
public sealed class SymbolizerTests : IDisposable
{
    private const ulong Slide = 0x2000_0000;
    private const ulong Text = 0xffffffff81000000 + Slide;

    private const string Map = """
        0000000000010000 D per_cpu_var
        ffffffff81000000 T _text
        ffffffff81000000 T _stext
        ffffffff81000100 T alpha
        ffffffff81000180 t beta
        ffffffff81000200 W weak_alias
        ffffffff81000200 T __gamma
        ffffffff81000200 T gamma
        ffffffff81000280 A absolute_constant
        ffffffff81000300 T _etext
        ffffffff81100000 D __start_rodata
        ffffffff81100010 d table
        ffffffff81100100 D __end_rodata
        ffffffff81200000 D _sdata
        ffffffff81200040 d var
        ffffffff81200080 D _edata
        ffffffff81280000 T _sinittext
        ffffffff81280020 t init_fn
        ffffffff81280100 T _einittext
        ffffffff81300000 B __bss_start
        ffffffff81300100 b buf
        ffffffff81301000 B __bss_stop
        ffffffff81301000 B __brk_base
        ffffffff81302000 B _end

        """;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private KernelSymbols Kernel(string map = Map) =>
        new(TextSymbolTable.OpenMap(RandomAccessFile.Open(_dir.Text("System.map", map.Replace("\n\n", "\n", StringComparison.Ordinal)), writable: false)),
            new SymbolRelocation(Slide, 0xffffffff80000000, DataModel.LP64));

    private static ModuleSymbolTable Fat() => new("fat",
        [new SymbolRegion("text", 0xffffffffc0000000, 0xffffffffc0001000, true), new SymbolRegion("data", 0xffffffffc0001000, 0xffffffffc0002000, false)],
        [new KernelSymbol("fat_a", 0xffffffffc0000000, 't'), new KernelSymbol("fat_b", 0xffffffffc0000100, 'T'), new KernelSymbol("fat_data", 0xffffffffc0001010, 'd'),
         new KernelSymbol("elsewhere", 0xffffffffc0100000, 't')]);

    [Fact]
    public void Code_is_func_plus_offset_over_the_distance_to_the_next_symbol()
    {
        var s = new Symbolizer(Kernel(), []);
        Assert.Equal("alpha+0x10/0x80", s.Symbolize(Text + 0x110).ToString());
        Assert.Equal("beta+0x7f/0x80", s.Symbolize(Text + 0x1ff).ToString());
        var a = s.Symbolize(Text + 0x110);
        Assert.Equal((Text + 0x100, 0x10UL, 0x80UL, (string?)null), (a.SymbolAddress, a.Offset, a.Size, a.Module));
        // The absolute symbol inside gamma ends nothing: gamma runs to _etext.
        Assert.Equal("gamma+0x90/0x100", s.Symbolize(Text + 0x290).ToString());
    }

    [Fact]
    public void Of_several_names_at_one_address_the_kernel_s_choice_wins()
    {
        // kallsyms prints a strong symbol before a weak one, and the one with fewer leading underscores.
        var s = new Symbolizer(Kernel(), []);
        Assert.Equal("gamma+0x0/0x100", s.Symbolize(Text + 0x200).ToString());
    }

    [Fact]
    public void The_kernel_s_own_kallsyms_keeps_its_order_of_aliases()
    {
        // /proc/kallsyms (or kallsyms decoded from memory) is already in the order the kernel picks aliases from, which
        // older kernels' scripts/kallsyms did not sort: its first name at an address is the answer. A System.map is in
        // nm's order, so there the kernel's sort is applied.
        const string lines = "ffffffff81000200 T __gamma\nffffffff81000200 T gamma\nffffffff81000300 T _etext\n";
        using var kallsyms = TextSymbolTable.OpenKallsyms(_dir.Text("kallsyms", lines));
        Assert.True(kallsyms.TryFindNearest(0xffffffff81000200, out var first));
        Assert.Equal("__gamma", first.Name);
        using var map = TextSymbolTable.OpenMap(RandomAccessFile.Open(_dir.Text("System.map.2", lines), writable: false));
        Assert.True(map.TryFindNearest(0xffffffff81000200, out var chosen));
        Assert.Equal("gamma", chosen.Name);
    }

    [Fact]
    public void A_return_address_is_looked_up_one_byte_before()
    {
        var s = new Symbolizer(Kernel(), []);
        // A call as the last instruction of beta returns to gamma's first byte: %pB names beta.
        Assert.Equal("beta+0x80/0x80", s.Symbolize(Text + 0x200, returnAddress: true).ToString());
        Assert.Equal("gamma+0x0/0x100", s.Symbolize(Text + 0x200).ToString());
        Assert.Equal("gamma+0x1/0x100", s.Symbolize(Text + 0x201, returnAddress: true).ToString());
    }

    [Fact]
    public void Data_symbols_end_at_their_section_s_end()
    {
        var s = new Symbolizer(Kernel(), []);
        Assert.Equal("table+0x8/0xf0", s.Symbolize(Text + 0x100018).ToString());
        Assert.Equal("var+0x3f/0x40", s.Symbolize(Text + 0x20007f).ToString());
        Assert.Equal("buf+0x10/0xf00", s.Symbolize(Text + 0x300110).ToString());
        Assert.Equal("init_fn+0x0/0xe0", s.Symbolize(Text + 0x280020).ToString());
        Assert.Equal("__bss_stop+0x10/0x1000", s.Symbolize(Text + 0x301010).ToString());
    }

    [Theory]
    [InlineData(0xffff8d7600246100UL)] // a direct-map (heap) pointer: today's phys_startup_64+0xffff8d7600246100
    [InlineData(0x47b7a0UL)]           // a user address
    [InlineData(0x10008UL)]            // a per-CPU offset
    [InlineData(Text - 0x1000)]        // below _stext under KASLR: no wrapped _stext+0xffffffffff…
    [InlineData(Text + 0x400)]         // past _etext, before rodata
    [InlineData(Text + 0x302000)]      // past _end
    public void An_address_outside_every_region_says_so(ulong address)
    {
        var s = new Symbolizer(Kernel(), [Fat()]);
        var r = s.Symbolize(address);
        Assert.False(r.IsKnown);
        Assert.Null(r.Name);
        Assert.Equal("outside the kernel image and every module", r.Reason);
        Assert.Equal($"0x{address:x} (outside the kernel image and every module)", r.ToString());
        Assert.Contains("modules unknown: no BTF", new Symbolizer(Kernel(), [], "no BTF").Symbolize(address).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Module_code_names_its_module_and_ends_at_its_text()
    {
        var s = new Symbolizer(Kernel(), [Fat()]);
        Assert.Equal("fat_b+0x10/0xf00 [fat]", s.Symbolize(0xffffffffc0000110).ToString());
        Assert.Equal("fat_a+0x100/0x100 [fat]", s.Symbolize(0xffffffffc0000100, returnAddress: true).ToString());
        Assert.Equal("fat_data+0x4/0xff0 [fat]", s.Symbolize(0xffffffffc0001014).ToString());
        var gap = s.Symbolize(0xffffffffc0001004);
        Assert.False(gap.IsKnown);
        Assert.Equal("in module fat's data, below its first symbol there", gap.Reason);
        // A symbol outside the module's memory is not one of its symbols.
        Assert.DoesNotContain(Fat().Symbols, x => x.Name == "elsewhere");
        Assert.False(s.Symbolize(0xffffffffc0100000).IsKnown);
    }

    [Fact]
    public void Text_is_the_image_s_text_and_init_text_and_module_text()
    {
        var s = new Symbolizer(Kernel(), [Fat()]);
        Assert.True(s.IsText(Text + 0x100));
        Assert.True(s.IsText(Text + 0x280020));
        Assert.True(s.IsText(0xffffffffc0000010));
        Assert.False(s.IsText(Text + 0x100010));
        Assert.False(s.IsText(0xffffffffc0001010));
        Assert.False(s.IsText(Text + 0x300));
    }

    [Fact]
    public void Names_are_looked_up_in_the_namelist_first_then_the_modules()
    {
        var s = new Symbolizer(Kernel(), [Fat()]);
        Assert.True(s.TryLookup("alpha", out var k, out var m));
        Assert.Equal((Text + 0x100, (string?)null), (k.Address, m));
        Assert.True(s.TryLookup("fat_b", out k, out m));
        Assert.Equal((0xffffffffc0000100UL, "fat"), (k.Address, m));
        Assert.False(s.TryLookup("nothing", out _, out _));
    }

    [Fact]
    public void A_namelist_without_section_markers_is_looked_up_without_bounds()
    {
        var s = new Symbolizer(Kernel("ffffffff81000000 T one\nffffffff81000040 T two\n"), []);
        Assert.Empty(s.KernelRegions);
        Assert.Equal("one+0x8/0x40", s.Symbolize(Text + 8).ToString());
        Assert.Equal("two+0x10", s.Symbolize(Text + 0x50).ToString());
        Assert.Equal("below every symbol", s.Symbolize(Text - 1).Reason);
    }
}
