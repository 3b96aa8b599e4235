using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>The type file given at open (<see cref="KvmOpenOptions.TypesPath"/>, <c>--types</c>) takes DWARF as well as
/// BTF, and says which it read.</summary>
[Collection(DwarfEnvironmentCollection.Name)]
public sealed class TypeFileTests
{
    private static byte[] PointElf()
    {
        var b = new DwarfBuilder { Version = 5 };
        var s = new SyntheticDwarf(b);
        var u = s.Unit();
        s.Point(u, s.Struct, w => w.Strp("point").U8(8));
        u.End();
        return b.Elf();
    }

    [Fact]
    public void An_elf_file_with_dwarf_and_no_btf_gives_the_types_of_its_dwarf()
    {
        using var dir = new TempDir();
        var path = dir.File("vmlinux.debug", PointElf());
        var old = Environment.GetEnvironmentVariable(DwarfBtfCache.NoCacheVariable);
        Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, "1");
        try
        {
            var btf = KernelBtf.Load(path);
            Assert.StartsWith("DWARF " + path, btf.Source, StringComparison.Ordinal);
            Assert.Contains("converted", btf.Source, StringComparison.Ordinal);
            Assert.Equal(SyntheticDwarf.LayoutOf(btf.Types, "point"),
                DwarfTypeSource.TryLoad(path, new DwarfOptions { NoCache = true }, out var direct, out _) ? SyntheticDwarf.LayoutOf(direct, "point") : "none");
        }
        finally
        {
            Environment.SetEnvironmentVariable(DwarfBtfCache.NoCacheVariable, old);
        }
    }

    [Fact]
    public void A_file_with_neither_btf_nor_dwarf_names_both()
    {
        using var dir = new TempDir();
        var path = dir.File("vmlinux", Images.Lp64Kernel().Build());
        var e = Assert.ThrowsAny<KvmException>(() => KernelBtf.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("no DWARF", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_old_option_name_is_the_same_option()
    {
        var options = new KvmOpenOptions { BtfPath = "/x" };
        Assert.Equal("/x", options.TypesPath);
        Assert.Equal("/y", new KvmOpenOptions { TypesPath = "/y" }.BtfPath);
    }
}
