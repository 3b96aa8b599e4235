using System.Text;
using KvmTyped.Formats;
using KvmTyped.Symbols;

namespace KvmTyped.Tests.Symbols;

/// <summary>Where the kallsyms tables are, from VMCOREINFO; and which keys are missing when they are not all there.</summary>
public class KallsymsTablesTests
{
    private const string Common = "OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff9cc00000\n";

    private const string Located =
        "SYMBOL(kallsyms_names)=ffffffff9ddbdac0\nSYMBOL(kallsyms_num_syms)=ffffffff9ddbdab8\n" +
        "SYMBOL(kallsyms_token_table)=ffffffff9df2ddd8\nSYMBOL(kallsyms_token_index)=ffffffff9df2e170\n";

    private const string BaseRelative = "SYMBOL(kallsyms_offsets)=ffffffff9dd619c8\nSYMBOL(kallsyms_relative_base)=ffffffff9ddbdab0\n";

    private static VmcoreInfo Info(string text) => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(text));

    private static readonly string[] AllKeys =
    [
        "SYMBOL(kallsyms_num_syms)", "SYMBOL(kallsyms_names)", "SYMBOL(kallsyms_token_table)", "SYMBOL(kallsyms_token_index)",
        "SYMBOL(kallsyms_offsets)", "SYMBOL(kallsyms_relative_base)",
    ];

    [Fact]
    public void A_6_1_vmcoreinfo_locates_every_table()
    {
        var info = Info(Common + Located + BaseRelative);
        Assert.Empty(KallsymsTables.MissingKeys(info));
        var t = KallsymsTables.FromVmcoreInfo(info, "vmcore");
        Assert.Equal(
            new KallsymsTables(0xffffffff9ddbdab8, 0xffffffff9ddbdac0, 0xffffffff9df2ddd8, 0xffffffff9df2e170,
                0xffffffff9dd619c8, 0xffffffff9ddbdab0, null, 0xffffffff9cc00000, TwoByteLengths: true),
            t);
        Assert.True(t.BaseRelative);
    }

    [Fact]
    public void Kallsyms_addresses_stands_in_for_offsets_and_relative_base()
    {
        var info = Info(Common + Located + "SYMBOL(kallsyms_addresses)=ffffffff9dd00000\n");
        Assert.Empty(KallsymsTables.MissingKeys(info));
        var t = KallsymsTables.FromVmcoreInfo(info, "vmcore");
        Assert.False(t.BaseRelative);
        Assert.Equal((null, null, 0xffffffff9dd00000UL), (t.Offsets, t.RelativeBase, t.Addresses));

        // With both forms written, the base-relative one is used.
        var both = KallsymsTables.FromVmcoreInfo(Info(Common + Located + BaseRelative + "SYMBOL(kallsyms_addresses)=ffffffff9dd00000\n"), "vmcore");
        Assert.True(both.BaseRelative);
        Assert.Null(both.Addresses);
    }

    [Fact]
    public void Before_6_0_every_key_is_missing_and_the_message_lists_them()
    {
        var old = Info("OSRELEASE=5.19.0-1-amd64\nSYMBOL(_stext)=ffffffff81000000\nSYMBOL(swapper_pg_dir)=ffffffff8240a000\n");
        Assert.Equal(AllKeys, KallsymsTables.MissingKeys(old));
        Assert.Equal(AllKeys, KallsymsTables.MissingKeys(null));
        Assert.False(KallsymsTables.TryFromVmcoreInfo(old, out var none, out var missing));
        Assert.Null(none);
        Assert.Equal(AllKeys, missing);
        var e = Assert.Throws<KvmException>(() => KallsymsTables.FromVmcoreInfo(old, "old.vmcore"));
        Assert.StartsWith("old.vmcore: ", e.Message, StringComparison.Ordinal);
        foreach (var key in AllKeys)
            Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Throws<KvmException>(() => KallsymsTables.FromVmcoreInfo(null, "raw.img"));
    }

    [Fact]
    public void Partly_present_or_unparsable_keys_are_each_named()
    {
        Assert.Equal(["SYMBOL(kallsyms_relative_base)"],
            KallsymsTables.MissingKeys(Info(Common + Located + "SYMBOL(kallsyms_offsets)=ffffffff9dd619c8\n")));
        Assert.Equal(["SYMBOL(kallsyms_names)"],
            KallsymsTables.MissingKeys(Info(Common + Located.Replace("=ffffffff9ddbdac0", "=not-hex", StringComparison.Ordinal) + BaseRelative)));
        Assert.Equal(["SYMBOL(kallsyms_token_index)", "SYMBOL(kallsyms_offsets)", "SYMBOL(kallsyms_relative_base)"],
            KallsymsTables.MissingKeys(Info(Common + "SYMBOL(kallsyms_names)=1\nSYMBOL(kallsyms_num_syms)=2\nSYMBOL(kallsyms_token_table)=3\n")));
    }

    [Fact]
    public void Stext_and_osrelease_are_optional()
    {
        var t = KallsymsTables.FromVmcoreInfo(Info(Located + BaseRelative), "vmcore");
        Assert.Null(t.Stext);
        Assert.True(t.TwoByteLengths);
    }

    [Theory]
    [InlineData("6.1.0-56-amd64", true)]
    [InlineData("6.1", true)]
    [InlineData("6.10.2", true)]
    [InlineData("7.0.0-rc1", true)]
    [InlineData("6.0.19-1-amd64", false)]
    [InlineData("6.0", false)]
    [InlineData("5.19.0", false)]
    [InlineData("4.19.0-27-amd64", false)]
    [InlineData("not-a-release", true)]
    [InlineData("6", true)]
    public void Two_byte_name_lengths_come_with_6_1(string release, bool twoByte)
    {
        Assert.Equal(twoByte, KallsymsTables.HasTwoByteLengths(release));
        var t = KallsymsTables.FromVmcoreInfo(Info($"OSRELEASE={release}\n" + Located + BaseRelative), "vmcore");
        Assert.Equal(twoByte, t.TwoByteLengths);
    }
}
