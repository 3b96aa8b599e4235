using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>Every command on a set of hostile files: the tool ends with 0, 1 or 2 — never an internal error (70),
/// never the runtime's abort.</summary>
public sealed class HostileFilesTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("kvmtyped-hostile-");

    public void Dispose() => _dir.Delete(recursive: true);

    private IEnumerable<string> HostileFiles()
    {
        var corpus = Path.Combine(Fixtures.RepoRoot, "tests", "KvmTyped.Fuzz", "regressions");
        foreach (var target in new[] { "elf-core", "kdump", "btf", "schema", "symbol-text", "elf-symtab", "dwarf" })
        {
            var dir = Path.Combine(corpus, target);
            if (Directory.Exists(dir))
            {
                foreach (var f in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                    yield return f;
            }
        }
        string Write(string name, byte[] bytes)
        {
            var path = Path.Combine(_dir.FullName, name);
            File.WriteAllBytes(path, bytes);
            return path;
        }
        yield return Write("empty", []);
        yield return Write("text", "not a dump\n\u001b[2J"u8.ToArray());
        var kdump = File.ReadAllBytes(Fixtures.Get(Dumps.Amd64Kdump));
        yield return Write("truncated.kdump", kdump[..65536]);
        var elf = File.ReadAllBytes(Fixtures.Get(Dumps.NoKaslrElf));
        yield return Write("truncated.elf", elf[..(1 << 20)]);
        yield return _dir.FullName;
        yield return "/dev/zero";
    }

    [Fact]
    public void No_command_ends_in_an_internal_error_on_a_hostile_file()
    {
        var map = Path.Combine(Fixtures.RepoRoot, "tests", "KvmTyped.Fuzz", "namelists", "amd64.map");
        var outDir = Path.Combine(_dir.FullName, "split");
        var runs = 0;
        foreach (var file in HostileFiles().ToList())
        {
            string[][] commands =
            [
                ["info"], ["info", "--json"], ["nlist", "linux_banner"], ["sym", "ffffffff82161900"], ["rd", "linux_banner", "-s"],
                ["rd", "linux_banner", "-l", "32"], ["struct", "list_head", "init_task"], ["ps"], ["log"], ["uname"],
                ["split", outDir, "--core-size", "1", "--section-size", "1"],
            ];
            foreach (var command in commands)
                Check([.. command, "-n", map, "-c", file], file);
            Check(["-n", file, "-c", Fixtures.Get(Dumps.NoKaslrElf), "nlist", "linux_banner"], file);
            Check(["btf", "dump", file], file);
            Check(["schema", "layout", file], file);
            Check(["schema", "import", "--btf", file, "list_head"], file);
        }
        Assert.True(runs > 100, $"{runs} runs");

        void Check(string[] args, string file)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            var code = CommandLine.Run(args, o, e);
            runs++;
            Assert.True(code is 0 or 1 or 2, $"kvmtyped {string.Join(' ', args)}: exit {code}: {e}");
            Assert.DoesNotContain('\u001b', o.ToString() + e.ToString());
            if (code != 0)
                Assert.StartsWith("kvmtyped: ", e.ToString());
        }
    }
}
