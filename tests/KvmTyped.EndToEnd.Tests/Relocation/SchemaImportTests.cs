using System.Diagnostics;
using System.Text.Json;
using KvmTyped.Btf;
using KvmTyped.EndToEnd.Tests.Linux;
using KvmTyped.TestSupport;
using KvmTyped.Tools;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Relocation;

/// <summary><c>schema import</c> writes schemas whose computed layout is the kernel's, as the BTF records it.</summary>
public class SchemaImportTests
{
    /// <summary>Records with holes, bitfields, anonymous unions and structs, flexible arrays, embedded records.</summary>
    private static readonly string[] Structs =
    [
        "list_head", "hlist_head", "hlist_node", "new_utsname", "rb_node", "rb_root", "timespec64", "task_struct", "mm_struct",
        "file", "inode", "sk_buff", "page", "dentry", "super_block", "kobject", "kref", "mutex", "rw_semaphore", "wait_queue_head",
        "work_struct", "timer_list", "hrtimer", "callback_head", "path", "qstr", "cred", "signal_struct", "vm_area_struct", "pid", "upid",
    ];

    /// <summary>The fixtures' kernels; the running kernel's BTF is added by <c>[HostBtfData]</c>, skipped by name where
    /// the machine has none.</summary>
    public static TheoryData<string, string> Sources() => new()
    {
        { Dumps.Amd64Vmlinux, "lp64" },
        { DumpCase.I386Btf, "ilp32" },
    };

    private static string Source(string name) => name.StartsWith('/') ? name : Fixtures.Get(name);

    [Theory]
    [MemberData(nameof(Sources))]
    [HostBtfData(Host.BtfPath, "lp64")]
    public void Complete_imports_lay_out_as_the_btf_says(string source, string model)
    {
        var path = Source(source);
        var btf = BtfReader.Load(path);
        var outFile = Path.Combine(Path.GetTempPath(), $"kvmtyped-import-{Environment.ProcessId}-{model}-{Path.GetFileName(path)}.h");
        try
        {
            var (code, _, err) = Run(["schema", "import", "--btf", path, .. Structs, "-o", outFile]);
            Assert.True(code == 0, err);
            (code, var json, err) = Run("schema", "layout", outFile, "--model", model, "--json");
            Assert.True(code == 0, err);
            var structs = JsonDocument.Parse(json).RootElement.GetProperty("structs").EnumerateArray().ToList();
            Assert.Subset(structs.Select(s => s.GetProperty("name").GetString()!).ToHashSet(), Structs.ToHashSet());
            int fields = 0;
            foreach (var s in structs)
            {
                var name = s.GetProperty("name").GetString()!;
                Assert.True(btf.TryFindComposite(name, out int id), name);
                Assert.True(btf.SizeOf(id) == s.GetProperty("size").GetInt64(), $"{name}: size {s.GetProperty("size")}, BTF {btf.SizeOf(id)}");
                foreach (var f in s.GetProperty("fields").EnumerateArray())
                {
                    var member = f.GetProperty("name").GetString()!;
                    if (member.StartsWith("__kvmtyped_pad", StringComparison.Ordinal))
                        continue;
                    var k = btf.FindMember(id, member);
                    Assert.True(k is not null, $"{name}.{member} is not in the BTF");
                    var at = (f.GetProperty("bitOffset").GetInt64(), f.GetProperty("bitSize").GetInt32(), f.GetProperty("bitSize").GetInt32() > 0 ? 0 : f.GetProperty("size").GetInt64());
                    Assert.True((k!.Value.BitOffset, k.Value.BitSize, k.Value.IsBitfield ? 0 : k.Value.Size) == at,
                        $"{name}.{member}: schema {at}, BTF ({k.Value.BitOffset}, {k.Value.BitSize}, {k.Value.Size})");
                    fields++;
                }
            }
            Assert.True(structs.Count >= Structs.Length && fields > 1000, $"{structs.Count} structs, {fields} members compared");
            var text = File.ReadAllText(outFile);
            Assert.Contains(" : ", text, StringComparison.Ordinal); // bitfields
            Assert.Contains("    union {", text, StringComparison.Ordinal); // anonymous unions
            Gcc(outFile, model == "lp64" ? 64 : 32);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    /// <summary>Every named struct and union of the BTF imported at once. C has one definition per tag, so a record
    /// that embeds one whose name the BTF uses for several different types may be laid out with the other one:
    /// only those may disagree.</summary>
    [Theory]
    [MemberData(nameof(Sources))]
    [HostBtfData(Host.BtfPath, "lp64")]
    public void Importing_every_record_of_a_kernel_lays_out_as_the_btf_says(string source, string model)
    {
        var path = Source(source);
        var btf = BtfReader.Load(path);
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var duplicated = new HashSet<string>(StringComparer.Ordinal);
        for (int id = 1; id <= btf.LastId; id++)
        {
            if (btf.KindOf(id) is not (BtfKind.Struct or BtfKind.Union) || btf.NameOf(id) is not { Length: > 0 } name)
                continue;
            if (!seen.Add(name))
                duplicated.Add(name);
            else
                names.Add(name);
        }
        var text = SchemaImport.Complete(btf, names);
        var outFile = Path.Combine(Path.GetTempPath(), $"kvmtyped-import-all-{Environment.ProcessId}-{model}.h");
        try
        {
            File.WriteAllText(outFile, text);
            var (code, json, err) = Run("schema", "layout", outFile, "--model", model, "--json");
            Assert.True(code == 0, err);
            int agree = 0;
            var disagree = new List<string>();
            foreach (var s in JsonDocument.Parse(json).RootElement.GetProperty("structs").EnumerateArray())
            {
                var name = s.GetProperty("name").GetString()!;
                Assert.True(btf.TryFindComposite(name, out int id), name);
                bool same = btf.SizeOf(id) == s.GetProperty("size").GetInt64();
                foreach (var f in s.GetProperty("fields").EnumerateArray())
                {
                    var member = f.GetProperty("name").GetString()!;
                    if (!member.StartsWith("__kvmtyped_pad", StringComparison.Ordinal))
                        same &= btf.FindMember(id, member) is { } k && k.BitOffset == f.GetProperty("bitOffset").GetInt64();
                }
                if (same)
                    agree++;
                else
                    disagree.Add(name);
            }
            Assert.True(agree >= names.Count - disagree.Count && agree > 7000, $"{agree} of {names.Count} agree");
            foreach (var name in disagree)
            {
                btf.TryFindComposite(name, out int id);
                Assert.True(EmbedsDuplicate(btf, id, duplicated, 0), $"{name} disagrees but embeds no record whose name the BTF has twice");
            }
            Gcc(outFile, model == "lp64" ? 64 : 32);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    private static bool EmbedsDuplicate(BtfTypes btf, int id, HashSet<string> duplicated, int depth)
    {
        foreach (var f in btf.GetFlattenedMembers(id))
        {
            int t = btf.Resolve(f.TypeId);
            while (btf.KindOf(t) == BtfKind.Array)
                t = btf.Resolve(btf.GetArray(t).ElementType);
            if (btf.KindOf(t) is BtfKind.Struct or BtfKind.Union && (duplicated.Contains(btf.NameOf(t)) || depth < 16 && EmbedsDuplicate(btf, t, duplicated, depth + 1)))
                return true;
        }
        return false;
    }

    /// <summary>BTF with TYPE_TAG, DECL_TAG and ENUM64 records (tests/Shared/Btf/tagged.btf) imports, lays out as the
    /// BTF says, and compiles, complete and as a subset.</summary>
    [Fact]
    public void Newer_btf_kinds_import_and_lay_out_as_the_btf_says()
    {
        var path = Host.TaggedBtf;
        var btf = BtfReader.Load(path);
        var outFile = Path.Combine(Path.GetTempPath(), $"kvmtyped-import-tagged-{Environment.ProcessId}.h");
        try
        {
            var (code, _, err) = Run("schema", "import", "--btf", path, "tag_task", "kset_uevent_ops", "-o", outFile);
            Assert.True(code == 0, err);
            (code, var json, err) = Run("schema", "layout", outFile, "--model", "lp64", "--json");
            Assert.True(code == 0, err);
            var structs = JsonDocument.Parse(json).RootElement.GetProperty("structs").EnumerateArray().ToList();
            Assert.Equal(["kset_uevent_ops", "tag_task"], structs.Select(s => s.GetProperty("name").GetString()!).Order(StringComparer.Ordinal));
            int fields = 0;
            foreach (var s in structs)
            {
                var name = s.GetProperty("name").GetString()!;
                Assert.True(btf.TryFindComposite(name, out int id), name);
                Assert.Equal(btf.SizeOf(id), s.GetProperty("size").GetInt64());
                foreach (var f in s.GetProperty("fields").EnumerateArray())
                {
                    var k = btf.FindMember(id, f.GetProperty("name").GetString()!);
                    Assert.NotNull(k);
                    Assert.Equal(k.Value.BitOffset, f.GetProperty("bitOffset").GetInt64());
                    Assert.Equal(k.Value.BitSize, f.GetProperty("bitSize").GetInt32());
                    fields++;
                }
            }
            Assert.Equal(btf.GetFlattenedMembers(btf.Find("tag_task", BtfKind.Struct)).Count + 3, fields);
            Gcc(outFile, 64);
            (code, var subset, err) = Run("schema", "import", "--btf", path, "tag_task", "--fields", "ubuf,parent,wide,sign,cb");
            Assert.True(code == 0, err);
            File.WriteAllText(outFile, subset);
            Gcc(outFile, 64);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    [Fact]
    public void A_subset_import_relocates_and_the_image_gives_the_same_as_its_vmlinux()
    {
        var vmlinux = Fixtures.Get(Dumps.Amd64Vmlinux);
        var (code, fromFile, err) = Run("schema", "import", "--btf", vmlinux, "task_struct", "--fields", "pid,comm,tasks");
        Assert.True(code == 0, err);
        Assert.Contains("struct task_struct {\n    pid_t pid;\n    char comm[16];\n    struct list_head tasks;\n} __attribute__((preserve_access_index));", fromFile, StringComparison.Ordinal);
        Assert.Contains("struct list_head {\n    struct list_head *next;\n    struct list_head *prev;\n};", fromFile, StringComparison.Ordinal);
        (code, var fromImage, err) = Run("schema", "import", "-n", Fixtures.Get(Dumps.Amd64Map), "-c", Fixtures.Get(Dumps.NoKaslrElf), "task_struct", "--fields", "pid,comm,tasks");
        Assert.True(code == 0, err);
        Assert.Equal(fromFile[fromFile.IndexOf('\n')..], fromImage[fromImage.IndexOf('\n')..]);
        var outFile = Path.Combine(Path.GetTempPath(), $"kvmtyped-subset-{Environment.ProcessId}.h");
        try
        {
            File.WriteAllText(outFile, fromFile);
            (code, var json, err) = Run("schema", "layout", outFile, "--json");
            Assert.True(code == 0, err);
            var root = JsonDocument.Parse(json).RootElement;
            Assert.Equal(["task_struct"], root.GetProperty("relocatable").EnumerateArray().Select(e => e.GetString()));
            Gcc(outFile, 64);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    [Fact]
    public void Unknown_types_and_members_fail_clearly()
    {
        var vmlinux = Fixtures.Get(Dumps.Amd64Vmlinux);
        var (code, _, err) = Run("schema", "import", "--btf", vmlinux, "no_such_struct");
        Assert.Equal((1, $"kvmtyped: {vmlinux}: no struct or union named 'no_such_struct'\n"), (code, err));
        (code, _, err) = Run("schema", "import", "--btf", vmlinux, "task_struct", "--fields", "pid,nothing");
        Assert.Equal((1, $"kvmtyped: {vmlinux}: struct task_struct has no member 'nothing'\n"), (code, err));
        (code, _, err) = Run("schema", "import", "task_struct");
        Assert.Equal(2, code);
        Assert.Contains("--types FILE", err, StringComparison.Ordinal);
    }

    /// <summary>The schema compiles as C (the built-in type names from a prelude: the C library's sys/types.h,
    /// which kvmtyped-types.h includes, has its own dev_t, sigset_t … that kernel typedefs would clash with).</summary>
    private static void Gcc(string file, int bits)
    {
        var prelude = Path.Combine(Path.GetTempPath(), $"kvmtyped-prelude-{Environment.ProcessId}.h");
        File.WriteAllText(prelude, """
            #include <stdint.h>
            #include <stddef.h>
            typedef _Bool bool; /* not stdbool.h: its macro would break members named bool */
            typedef uint8_t u8; typedef int8_t s8; typedef uint16_t u16; typedef int16_t s16;
            typedef uint32_t u32; typedef int32_t s32; typedef uint64_t u64; typedef int64_t s64;
            typedef u8 __u8; typedef s8 __s8; typedef u16 __u16; typedef s16 __s16; typedef u32 __u32; typedef s32 __s32;
            typedef u64 __u64; typedef s64 __s64; typedef u16 __le16; typedef u16 __be16; typedef u32 __le32; typedef u32 __be32;
            typedef u64 __le64; typedef u64 __be64; typedef long ssize_t; typedef int pid_t; typedef unsigned int uid_t; typedef unsigned int gid_t;
            """);
        var psi = new ProcessStartInfo("gcc", ["-m" + bits, "-std=gnu11", "-fsyntax-only", "-w", "-include", prelude, file])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        File.Delete(prelude);
        Assert.True(p.ExitCode == 0, $"gcc -m{bits}: {stderr}");
    }
}
