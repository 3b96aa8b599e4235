using KvmTyped.Btf;
using KvmTyped.TestSupport;
using KvmTyped.Tests.Btf;
using Microsoft.CodeAnalysis;
using KvmTyped.Tools;

namespace KvmTyped.Generators.Tests;

/// <summary>Kernels for the kernel check: small BTF blobs built in code, and the real fixture kernels, each turned into
/// the digest the build task writes (by the same writer) and handed to the generator as an additional file.</summary>
internal static class TestKernels
{
    /// <summary>A small kernel's BTF: int types, list_head, and a task_struct of pid, __state, comm[16], tasks, mm, a
    /// 3-bit flags bitfield, prio, a long and, unless <paramref name="withoutNuma"/>, numa_scan_seq. Under ILP32 longs
    /// and pointers are 4 bytes and the offsets follow.</summary>
    public static byte[] Small(bool lp64 = true, bool withoutNuma = false, bool unsignedChar = false)
    {
        var b = new BtfBuilder();
        var ptr = lp64 ? 64u : 32u;
        var i32 = b.Int("int", 4, encoding: 1);
        var u32 = b.Int("unsigned int", 4);
        var slong = b.Int("long int", lp64 ? 4u * 2 : 4, encoding: 1);
        b.Int("long unsigned int", lp64 ? 8u : 4);
        var ch = b.Int("char", 1, encoding: unsignedChar ? 0 : 1);
        var listFwd = b.Fwd("list_head");
        var listPtr = b.Ptr(listFwd);
        var list = b.Struct("list_head", 2 * ptr / 8, ("next", listPtr, 0, 0), ("prev", listPtr, ptr, 0));
        var mm = b.Ptr(b.Fwd("mm_struct"));
        b.Struct("mm_struct", 4, ("x", i32, 0, 0));
        var comm = b.Array(ch, i32, 16);
        var tasks = 192u;
        var mmAt = tasks + 2 * ptr;
        var flagsAt = mmAt + ptr;
        var longAt = flagsAt + 64;
        var members = new List<(string, int, uint, int)>
        {
            ("pid", i32, 0, 0), ("__state", u32, 32, 0), ("comm", comm, 64, 0), ("tasks", list, tasks, 0), ("mm", mm, mmAt, 0),
            ("flags", u32, flagsAt, 3), ("prio", i32, flagsAt + 32, 0), ("nr", slong, longAt, 0),
        };
        if (!withoutNuma)
            members.Add(("numa_scan_seq", i32, longAt + 64, 0));
        b.Struct("task_struct", (longAt + 128) / 8, [.. members]);
        return b.Build();
    }

    /// <summary>The digest of <paramref name="blob"/> as an additional file the generator reads as a kernel.</summary>
    public static AdditionalText Digest(string name, byte[] blob, string release, string? machine = null) =>
        new InMemoryAdditionalText("/obj/kvmtyped/" + name + ".kvmtk", DigestText(blob, release, machine, name));

    public static string DigestText(byte[] blob, string release, string? machine, string source) =>
        KernelDigestWriter.Write(BtfTypes.Parse(blob, sourceName: source), blob, release, machine, source, stamp: null);

    /// <summary>A fixture kernel's digest, as the build task writes it (release from the file name, machine from the ELF
    /// header or the types).</summary>
    public static AdditionalText Fixture(string relative)
    {
        var path = Fixtures.Get(relative);
        var contents = KernelFile.Load(path);
        var text = KernelDigestWriter.Write(BtfTypes.Parse(contents.Blob, sourceName: path), contents.Blob, KernelFile.ReleaseFromName(relative), contents.ElfMachine, relative, stamp: null);
        return new InMemoryAdditionalText("/obj/kvmtyped/" + Path.GetFileName(relative) + ".kvmtk", text);
    }

    /// <summary>The kernel check's diagnostics (KVMT01xx) of a run.</summary>
    public static List<Diagnostic> Findings(GeneratorDriverRunResult result) =>
        result.Diagnostics.Where(d => d.Id.StartsWith("KVMT01", StringComparison.Ordinal)).ToList();
}
