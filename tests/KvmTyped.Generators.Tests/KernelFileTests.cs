using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using KvmTyped.Btf;
using KvmTyped.Tests.Btf;
using KvmTyped.Tools;

namespace KvmTyped.Generators.Tests;

/// <summary>What the digest task reads from a kernel file (raw BTF, ELF .BTF, either gzip'd) and what it infers, on
/// files built in code, damaged ones included: each fails with a message naming the file and what was wrong.</summary>
public sealed class KernelFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-kernelfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Blob() => TestKernels.Small();

    /// <summary>An ELF file of sections null, .shstrtab and (name) holding <paramref name="contents"/>.</summary>
    private static byte[] Elf(bool is64, ushort machine, byte[] contents, string name = ".BTF", bool bigEndian = false, uint type = 1, ulong flags = 0,
        Action<byte[]>? patch = null)
    {
        var names = Encoding.ASCII.GetBytes("\0.shstrtab\0" + name + "\0");
        var header = is64 ? 64 : 52;
        var entry = is64 ? 64 : 40;
        var namesAt = header;
        var dataAt = namesAt + names.Length;
        var shoff = (dataAt + contents.Length + 7) / 8 * 8;
        var file = new byte[shoff + 3 * entry];
        void U16(int at, int v) { if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(file.AsSpan(at), (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(at), (ushort)v); }
        void U32(int at, ulong v) { if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(file.AsSpan(at), (uint)v); else BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(at), (uint)v); }
        void U64(int at, ulong v) { if (bigEndian) BinaryPrimitives.WriteUInt64BigEndian(file.AsSpan(at), v); else BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(at), v); }
        void Word(int at, ulong v) { if (is64) U64(at, v); else U32(at, v); }
        "\u007fELF"u8.CopyTo(file);
        file[4] = (byte)(is64 ? 2 : 1);
        file[5] = (byte)(bigEndian ? 2 : 1);
        file[6] = 1;
        U16(16, 2);
        U16(18, machine);
        Word(is64 ? 40 : 32, (ulong)shoff);
        U16(is64 ? 58 : 46, entry);
        U16(is64 ? 60 : 48, 3);
        U16(is64 ? 62 : 50, 1);
        names.CopyTo(file, namesAt);
        contents.CopyTo(file, dataAt);
        void Section(int index, uint nameOff, uint sectionType, ulong sectionFlags, int offset, int size)
        {
            var at = shoff + index * entry;
            U32(at, nameOff);
            U32(at + 4, sectionType);
            Word(at + 8, sectionFlags);
            Word(at + (is64 ? 24 : 16), (ulong)offset);
            Word(at + (is64 ? 32 : 20), (ulong)size);
        }
        Section(1, 1, 3, 0, namesAt, names.Length);
        Section(2, 11, type, flags, dataAt, contents.Length);
        patch?.Invoke(file);
        return file;
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest))
            gz.Write(bytes);
        return output.ToArray();
    }

    [Theory]
    [InlineData(true, (ushort)62, false, "x86_64")]
    [InlineData(false, (ushort)3, false, "i386")]
    [InlineData(true, (ushort)183, true, "aarch64")]
    public void ElfBtfSectionAndMachine(bool is64, ushort machine, bool bigEndian, string expected)
    {
        var blob = Blob();
        var contents = KernelFile.Load(Write("vmlinux", Elf(is64, machine, blob, bigEndian: bigEndian)));
        Assert.Equal(blob, contents.Blob);
        Assert.Equal(expected, contents.ElfMachine);
    }

    [Fact]
    public void RawAndGzippedFilesGiveTheSameBlob()
    {
        var blob = Blob();
        var raw = KernelFile.Load(Write("k.btf", blob));
        Assert.Equal(blob, raw.Blob);
        Assert.Null(raw.ElfMachine);
        Assert.Equal(blob, KernelFile.Load(Write("k.btf.gz", Gzip(blob))).Blob);
        var elf = KernelFile.Load(Write("vmlinux.gz", Gzip(Elf(true, 62, blob))));
        Assert.Equal(blob, elf.Blob);
        Assert.Equal("x86_64", elf.ElfMachine);
    }

    [Theory]
    [InlineData("section", "lies outside")]
    [InlineData("btf-size", "lies outside")]
    [InlineData("no-btf", "has no .BTF section")]
    [InlineData("nobits", "SHT_NOBITS")]
    [InlineData("compressed", "SHF_COMPRESSED")]
    [InlineData("strndx", "section-name table index 7")]
    [InlineData("entsize", "section header size 8")]
    [InlineData("class", "unknown ELF class 9")]
    [InlineData("garbage", "neither raw BTF")]
    [InlineData("gz-garbage", "neither raw BTF")]
    public void DamagedFilesAreRefusedNamingTheFile(string damage, string expected)
    {
        var blob = Blob();
        var bytes = damage switch
        {
            "section" => Elf(true, 62, blob, patch: f => BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(40), 1UL << 40)),
            "btf-size" => Elf(true, 62, blob, patch: f => BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(f.Length - 64 + 32), 1UL << 20)),
            "no-btf" => Elf(true, 62, blob, name: ".data"),
            "nobits" => Elf(true, 62, blob, type: 8),
            "compressed" => Elf(true, 62, blob, flags: 0x800),
            "strndx" => Elf(true, 62, blob, patch: f => BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(62), 7)),
            "entsize" => Elf(true, 62, blob, patch: f => BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(58), 8)),
            "class" => Elf(true, 62, blob, patch: f => f[4] = 9),
            "garbage" => Encoding.ASCII.GetBytes("not a kernel at all"),
            _ => Gzip(Encoding.ASCII.GetBytes("still not a kernel")),
        };
        var path = Write("bad-" + damage, bytes);
        var e = Assert.Throws<KvmFormatException>(() => KernelFile.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/k/vmlinux-6.1.0-56-amd64.btf", "6.1.0-56-amd64")]
    [InlineData("/k/vmlinux-6.1.0-56-amd64.gz", "6.1.0-56-amd64")]
    [InlineData("/k/vmlinux-6.1.0-56-amd64.btf.gz", "6.1.0-56-amd64")]
    [InlineData("/k/vmlinux-6.1.0-56-amd64", "6.1.0-56-amd64")]
    [InlineData("/k/5.15.0-91-generic.btf", "5.15.0-91-generic")]
    [InlineData("/sys/kernel/btf/vmlinux", "vmlinux")]
    public void ReleaseComesFromTheFileName(string path, string release) => Assert.Equal(release, KernelFile.ReleaseFromName(path));

    [Fact]
    public void MachineOfRawBtfComesFromItsRegisters()
    {
        static BtfTypes Regs(uint longSize, params string[] members)
        {
            var b = new BtfBuilder();
            var ul = b.Int("long unsigned int", longSize);
            b.Struct("pt_regs", (uint)(members.Length * longSize), members.Select((m, i) => (m, ul, (uint)(i * longSize * 8), 0)).ToArray());
            return BtfTypes.Parse(b.Build());
        }
        Assert.Equal("x86_64", KernelDigestWriter.InferMachine(Regs(8, "r15", "bx", "orig_ax")));
        Assert.Equal("i386", KernelDigestWriter.InferMachine(Regs(4, "bx", "orig_ax")));
        Assert.Equal("aarch64", KernelDigestWriter.InferMachine(Regs(8, "pstate", "orig_x0")));
        Assert.Equal("unknown", KernelDigestWriter.InferMachine(Regs(8, "gpr", "nip")));
    }

    [Fact]
    public void PointerSizeMustBeKnown()
    {
        var b = new BtfBuilder();
        b.Struct("x", 4, ("a", b.Int("int", 4, encoding: 1), 0, 0));
        var blob = b.Build();
        var e = Assert.Throws<KvmFormatException>(() => KernelDigestWriter.Write(BtfTypes.Parse(blob, sourceName: "nolong.btf"), blob, "r", null, "nolong.btf", null));
        Assert.Contains("pointer size is not known", e.Message, StringComparison.Ordinal);
        Assert.Contains("pointer 4", KernelDigestWriter.Write(BtfTypes.Parse(blob), blob, "r", "i386", "nolong.btf", null), StringComparison.Ordinal);
    }

    [Fact]
    public void DamagedStructLineInADigestIsReported()
    {
        var text = TestKernels.DigestText(Blob(), "k", null, "k.btf").Replace("pid@0:s4", "pid@zero:s4", StringComparison.Ordinal);
        var (result, _) = GeneratorHarness.Run(GeneratorHarness.Schemas(("/src/t.h", "struct task_struct { int pid; } __attribute__((preserve_access_index));\n"))
            .Append(new InMemoryAdditionalText("/obj/k.kvmtk", text)).ToList());
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal("KVMT0104", d.Id);
        Assert.Contains("entry 'task_struct': member 'pid@zero:s4' has no valid bit offset", d.GetMessage(), StringComparison.Ordinal);
    }
}
