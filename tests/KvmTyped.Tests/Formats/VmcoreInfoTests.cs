using System.Text;
using KvmTyped.Linux;
using KvmTyped.Formats;

namespace KvmTyped.Tests.Formats;

public class VmcoreInfoTests
{
    private static VmcoreInfo Parse(string s) => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(s));

    [Fact]
    public void Reads_each_key_in_its_own_base()
    {
        var info = Parse("OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a12360\n" +
                         "SIZE(list_head)=16\nOFFSET(list_head.next)=0\nNUMBER(phys_base)=-769654784\n" +
                         "KERNELOFFSET=1bc00000\nCONFIG_X86_PAE=y\n\0garbage=after-nul");
        Assert.Equal("6.1.0-56-amd64", info.OsRelease);
        Assert.Equal(4096, info.PageSize);
        Assert.Equal(0xffffffff82a12360UL, info.Symbol("init_uts_ns"));
        Assert.Equal(16UL, info.Size("list_head"));
        Assert.Equal(0UL, info.Offset("list_head.next"));
        Assert.Equal(-769654784L, info.Number("phys_base"));
        Assert.Equal(0x1bc00000UL, info.KernelOffset);
        Assert.True(info.IsPae);
        Assert.Null(info["garbage"]);
    }

    [Fact]
    public void Malformed_values_read_as_absent()
    {
        var info = Parse("PAGESIZE=-4096\nSYMBOL(x)=zz\nSIZE(y)=-1\nnoequals\n=novalue\n");
        Assert.Null(info.PageSize);
        Assert.Null(info.Symbol("x"));
        Assert.Null(info.Size("y"));
        Assert.Equal(0, info.Entries.Count(e => e.Key.Length == 0));
    }
}
