using System.Text.Json;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Linux;

/// <summary>One task of truth.json's tasks_from_proc (read from /proc inside the guest before the dump).</summary>
internal sealed record ProcTask(int Pid, int Tid, int Ppid, string State, string Comm, string Args);

/// <summary>The parts of truth.json the Linux helpers are checked against.</summary>
internal sealed class LinuxTruth
{
    private readonly JsonElement _root;

    private LinuxTruth(JsonElement root) => _root = root;

    public static LinuxTruth Load(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, folder, "truth.json")));
        return new LinuxTruth(doc.RootElement.Clone());
    }

    public string UnameA => _root.GetProperty("uname_a").GetString()!.Trim();

    public string LinuxBanner => _root.GetProperty("linux_banner").GetString()!.TrimEnd('\n');

    public string Cmdline => _root.GetProperty("cmdline").GetString()!.Trim();

    public (int ParentPid, int ZombiePid) Zombie =>
        (_root.GetProperty("labzombie").GetProperty("parent_pid").GetInt32(), _root.GetProperty("labzombie").GetProperty("zombie_pid").GetInt32());

    /// <summary>The panic line of a kdump set (x86: kdump.panic) or of a dump QEMU took at a panic (arm64: panic.message),
    /// or null.</summary>
    public string? Panic =>
        _root.TryGetProperty("kdump", out var k) && k.TryGetProperty("panic", out var p) ? p.GetString()
        : _root.TryGetProperty("panic", out var q) && q.TryGetProperty("message", out var m) ? "Kernel panic - not syncing: " + m.GetString()
        : null;

    public IReadOnlyList<ProcTask> Tasks =>
    [
        .. _root.GetProperty("tasks_from_proc").EnumerateArray().Select(t => new ProcTask(
            t.GetProperty("pid").GetInt32(), t.GetProperty("tid").GetInt32(), t.GetProperty("ppid").GetInt32(),
            t.GetProperty("state").GetString()!, t.GetProperty("proc_comm").GetString()!, t.GetProperty("args").GetString()!)),
    ];
}

/// <summary>A fixture dump opened with one namelist (and BTF file), with the BTF source it is expected to use.</summary>
public sealed record DumpCase(string Folder, string Core, string Namelist, string? Btf, string ExpectedBtfSource)
{
    public override string ToString() => $"{Core} + {Path.GetFileName(Namelist)}{(Btf is null ? "" : " + " + Path.GetFileName(Btf))}";

    internal Kvm Open() => Kvm.Open(Fixtures.Get(Namelist), Fixtures.Get(Core), options: new KvmOpenOptions { BtfPath = BtfPath });

    internal string? BtfPath => Btf is null ? null : Fixtures.Get(Btf);

    internal string[] CliArgs(params string[] command) =>
        [.. command, "-n", Fixtures.Get(Namelist), "-c", Fixtures.Get(Core), .. Btf is null ? Array.Empty<string>() : ["--btf", Fixtures.Get(Btf)]];

    public const string I386Btf = "i386/vmlinux-6.1.0-50-686-pae.btf";

    /// <summary>Every fixture dump: amd64 with System.map (BTF from the image's memory) and with vmlinux (its .BTF),
    /// i386 with System.map and the detached BTF file (the kernel has none), ELF and kdump-compressed; arm64 (QEMU's
    /// flattened zlib kdump) with System.map, BTF from the image's memory.</summary>
    public static TheoryData<DumpCase> All() => new(Cases);

    internal static readonly DumpCase[] Cases =
    [
        new("amd64/nokaslr", Dumps.NoKaslrElf, Dumps.Amd64Map, null, "image memory"),
        new("amd64/nokaslr", Dumps.NoKaslrElf, Dumps.Amd64Vmlinux, null, "namelist .BTF"),
        new("amd64/kdump-kaslr", Dumps.Amd64KdumpElf, Dumps.Amd64Map, null, "image memory"),
        new("amd64/kdump-kaslr", Dumps.Amd64KdumpElf, Dumps.Amd64Vmlinux, null, "namelist .BTF"),
        new("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Map, null, "image memory"),
        new("amd64/kdump-kaslr", Dumps.Amd64Kdump, Dumps.Amd64Vmlinux, null, "namelist .BTF"),
        new("i386/pae-kdump-kaslr", Dumps.I386KdumpElf, Dumps.I386Map, I386Btf, "file"),
        new("i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Map, I386Btf, "file"),
        new("i386/pae-kdump-kaslr", Dumps.I386Kdump, Dumps.I386Vmlinux, I386Btf, "file"),
        new("arm64", Dumps.Arm64Kdump, Dumps.Arm64Map, null, "image memory"),
    ];
}
