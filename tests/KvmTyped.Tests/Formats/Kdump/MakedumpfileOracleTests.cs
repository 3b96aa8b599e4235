using KvmTyped.Formats.Compression;
using KvmTyped.Formats.Kdump;
using KvmTyped.Tests.Formats.Compression;
using KvmTyped.TestSupport;

namespace KvmTyped.Tests.Formats.Kdump;

/// <summary>The real makedumpfile turns the amd64 ELF fixture into kdump files of other shapes (raw, zlib,
/// flattened, split); every dumped page must read back as the ELF has it.</summary>
public class MakedumpfileOracleTests : IDisposable
{
    private const string Amd64Elf = "amd64/kdump-kaslr/vmcore.mdf-d31.elf.gz";
    private readonly TempFiles _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static void AssertSameAsElf(KdumpFile k, string elf, int minimumPages)
    {
        using var e = new ElfCoreLoads(elf);
        var a = new byte[4096];
        var b = new byte[4096];
        int compared = 0;
        for (ulong pfn = 0; pfn < k.MaxMapnr; pfn++)
        {
            if (k.GetPageCodec(pfn) is null || !e.TryReadPage(pfn * 4096, b))
                continue;
            Assert.True(k.TryRead(pfn * 4096, a, out var failure), failure);
            if (!a.AsSpan().SequenceEqual(b))
                Assert.Fail($"pfn 0x{pfn:x} differs");
            compared++;
        }
        Assert.True(compared >= minimumPages, $"only {compared} pages compared");
    }

    [RequiresToolTheory("makedumpfile")]
    [InlineData("", (int)(KdumpCodecs.Raw))]
    [InlineData("-c", (int)(KdumpCodecs.Zlib | KdumpCodecs.Raw))]
    public void Plain_output_reads_as_the_elf(string codecOption, int codecsValue)
    {
        var codecs = (KdumpCodecs)codecsValue;
        var elf = Fixtures.Get(Amd64Elf);
        var output = System.IO.Path.Combine(_tmp.Root, "plain.kdump");
        OracleTools.Run("makedumpfile", $"{codecOption} -d 31 {elf} {output}");
        using var k = KdumpFile.Open(output);
        Assert.Equal(codecs, k.ScanCodecs());
        AssertSameAsElf(k, elf, 5000);
    }

    [RequiresToolFact("makedumpfile")]
    public void Flattened_output_reads_as_the_elf()
    {
        var elf = Fixtures.Get(Amd64Elf);
        var output = System.IO.Path.Combine(_tmp.Root, "flat.kdump");
        OracleTools.Run("makedumpfile", $"-F -l -d 31 {elf}", stdoutFile: output);
        using var k = KdumpFile.Open(output);
        Assert.True(k.IsFlattened);
        Assert.Equal(KdumpCodecs.Lzo | KdumpCodecs.Raw, k.ScanCodecs());
        AssertSameAsElf(k, elf, 5000);
    }

    [RequiresToolFact("makedumpfile")]
    public void Split_output_opens_as_one_set()
    {
        var elf = Fixtures.Get(Amd64Elf);
        var parts = Enumerable.Range(1, 3).Select(i => System.IO.Path.Combine(_tmp.Root, $"split{i}.kdump")).ToArray();
        OracleTools.Run("makedumpfile", $"--split -c -d 31 {elf} {string.Join(' ', parts)}");
        using var k = KdumpFile.OpenSet(parts.Reverse().ToArray());
        Assert.Equal(3, k.Headers.Count);
        Assert.All(k.Headers, h => Assert.True(h.IsSplit));
        Assert.Equal(0UL, k.Headers[0].StartPfn);
        Assert.Equal(k.MaxMapnr, k.Headers[2].EndPfn);
        AssertSameAsElf(k, elf, 5000);
    }
}
