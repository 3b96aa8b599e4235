using System.Text.Json;
using KvmTyped.EndToEnd.Tests.Kernel;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.Linux;
using KvmTyped.TestSupport;
using KvmTyped.Types;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Relocation;

/// <summary>Complete (computed) structs checked against each fixture kernel's BTF.</summary>
public class TypeCheckTests
{
    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void The_generated_complete_views_agree_with_every_fixture_kernel(DumpCase c)
    {
        using var kvm = Kvm.Open(Fixtures.Get(c.Namelist), Fixtures.Get(c.Core), options: new KvmOpenOptions { BtfPath = c.BtfPath });
        var result = KernelTypeCheck.Check(kvm, list_head.StaticLayout(kvm.DataModel), hlist_head.StaticLayout(kvm.DataModel),
            hlist_node.StaticLayout(kvm.DataModel), new_utsname.StaticLayout(kvm.DataModel), kuid_t.StaticLayout(kvm.DataModel),
            task_struct.StaticLayout(kvm.DataModel));
        Assert.True(result.AllAgree, string.Join("; ", result.Disagreements.Select(d => d.Message)));
        Assert.Equal(["list_head", "hlist_head", "hlist_node", "new_utsname", "kuid_t"], result.Agreeing);
        Assert.True(KernelTypeCheck.Check<kgid_t>(kvm).AllAgree);
    }

    [Fact]
    public void A_layout_that_is_not_the_kernel_s_is_reported_member_by_member()
    {
        using var kvm = Kvm.Open(Fixtures.Get(Dumps.Amd64Map), Fixtures.Get(Dumps.NoKaslrElf));
        var wrong = new KernelStructLayout("list_head", 24, 8,
        [
            new("next", 0, 8, 0, 0),
            new("prev", 16, 8, 128, 0),
            new("extra", 8, 4, 64, 0),
        ]);
        var absent = new KernelStructLayout("no_such_struct_here", 8, 8, []);
        var result = KernelTypeCheck.Check(kvm, [wrong, absent]);
        Assert.Empty(result.Agreeing);
        Assert.Equal(["no_such_struct_here"], result.NotInBtf);
        Assert.Equal(
        [
            "list_head: size 24, but the kernel's is 16 (kernel 6.1.0-56-amd64)",
            "list_head.prev: offset 16, but the kernel's is 8 (kernel 6.1.0-56-amd64)",
            "list_head.extra: the kernel's has no such member (kernel 6.1.0-56-amd64)",
        ], result.Disagreements.Select(d => d.Message));
        Assert.Equal([null, "prev", "extra"], result.Disagreements.Select(d => d.Member));
        Assert.All(result.Disagreements, d => Assert.Equal("list_head", d.StructName));
    }

    [Theory]
    [MemberData(nameof(DumpCase.All), MemberType = typeof(DumpCase))]
    public void Info_says_the_shipped_complete_structs_agree(DumpCase c)
    {
        var (code, o, e) = Run(c.CliArgs("info"));
        Assert.True(code == 0, e);
        Assert.Contains("types:        6 complete structs agree with BTF\n", o, StringComparison.Ordinal);
        (code, o, e) = Run(c.CliArgs("info", "--json"));
        Assert.True(code == 0, e);
        var check = JsonDocument.Parse(o).RootElement.GetProperty("typeCheck");
        Assert.Equal(6, check.GetProperty("agree").GetInt32());
        Assert.Equal(0, check.GetProperty("disagreements").GetArrayLength());
    }

    [Fact]
    public void Info_without_btf_says_nothing_about_types()
    {
        var (code, o, e) = Run("info", "-n", Fixtures.Get(Dumps.I386Map), "-c", Fixtures.Get(Dumps.I386Kdump));
        Assert.True(code == 0, e);
        Assert.DoesNotContain("\ntypes:", "\n" + o, StringComparison.Ordinal);
        Assert.Contains("btf:          none", o, StringComparison.Ordinal);
    }
}
