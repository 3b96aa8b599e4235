using System.Text.Json;
using KvmTyped.Cli;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Linux;

public class CliLinuxTests
{
    private static readonly DumpCase Nokaslr = DumpCase.Cases.First(d => d.Core == Dumps.NoKaslrElf);

    private static readonly DumpCase I386 = DumpCase.Cases.First(d => d.Core == Dumps.I386Kdump);

    [Fact]
    public void Ps_text_has_crash_s_columns_and_brackets_kernel_threads()
    {
        var (code, o, e) = Run(Nokaslr.CliArgs("ps"));
        Assert.Equal((0, ""), (code, e));
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\s+PID\s+PPID\s+CPU\s+TASK\s+ST\s+COMM$", lines[0]);
        // '>' marks what each CPU was running: QEMU stopped both idle.
        Assert.Matches(@"^>\s+0\s+0\s+0\s+ffffffff82a1aa40 R  \[swapper/0\]$", lines[1]);
        Assert.Equal(2, lines.Count(l => l.StartsWith('>')));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+2\s+0\s+\d\s+[0-9a-f]{16} S  \[kthreadd\]$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+100\s+98\s+\d\s+[0-9a-f]{16} Z  labzombie$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+101\s+1\s+\d\s+[0-9a-f]{16} S  labthr-A$"));
    }

    [Fact]
    public void Ps_json_lists_every_task_with_its_fields_on_i386_with_a_btf_file()
    {
        var truth = LinuxTruth.Load(I386.Folder);
        var (code, o, e) = Run(I386.CliArgs("ps", "--json"));
        Assert.Equal((0, ""), (code, e));
        using var doc = JsonDocument.Parse(o);
        var rows = doc.RootElement.EnumerateArray().ToList();
        var tids = rows.Select(r => r.GetProperty("pid").GetInt32()).Where(p => p > 0).Order().ToList();
        Assert.Equal(truth.Tasks.Select(t => t.Tid).Order(), tids);
        var z = rows.Single(r => r.GetProperty("pid").GetInt32() == truth.Zombie.ZombiePid);
        Assert.Equal("Z", z.GetProperty("state").GetString());
        Assert.Equal(truth.Zombie.ParentPid, z.GetProperty("ppid").GetInt32());
        Assert.Equal("labzombie", z.GetProperty("comm").GetString());
        Assert.Matches("^0x[0-9a-f]{8}$", z.GetProperty("task").GetString()!);
        Assert.InRange(z.GetProperty("cpu").GetInt32(), 0, 1);
        var thread = rows.Single(r => r.GetProperty("comm").GetString() == "labthr-B");
        Assert.Equal(truth.Tasks.Single(t => t.Comm == "labthr-B").Pid, thread.GetProperty("tgid").GetInt32());
    }

    [Fact]
    public void Ps_on_i386_without_btf_fails_naming_the_option()
    {
        var (code, o, e) = Run("ps", "-n", TestSupport.Fixtures.Get(Dumps.I386Map), "-c", TestSupport.Fixtures.Get(Dumps.I386Kdump));
        Assert.Equal((CommandLine.Failure, ""), (code, o));
        Assert.StartsWith("kvmtyped: no BTF for this kernel", e, StringComparison.Ordinal);
        Assert.Contains("--btf", e, StringComparison.Ordinal);
    }

    [Fact]
    public void Uname_text_and_json()
    {
        var truth = LinuxTruth.Load(Nokaslr.Folder);
        var (code, o, e) = Run(Nokaslr.CliArgs("uname"));
        Assert.Equal((0, "", truth.UnameA), (code, e, o.TrimEnd('\n')));
        (code, o, _) = Run(I386.CliArgs("uname", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var u = doc.RootElement;
        var words = LinuxTruth.Load(I386.Folder).UnameA.Split(' ');
        Assert.Equal(words[0], u.GetProperty("sysname").GetString());
        Assert.Equal(words[1], u.GetProperty("nodename").GetString());
        Assert.Equal(words[2], u.GetProperty("release").GetString());
        Assert.Equal(string.Join(' ', words[3..^2]), u.GetProperty("version").GetString());
        Assert.Equal(words[^2], u.GetProperty("machine").GetString());
        Assert.Equal("(none)", u.GetProperty("domainname").GetString());
    }

    [Fact]
    public void Log_text_and_json()
    {
        var truth = LinuxTruth.Load(Nokaslr.Folder);
        var (code, o, e) = Run(Nokaslr.CliArgs("log"));
        Assert.Equal((0, ""), (code, e));
        var lines = o.Split('\n');
        Assert.Equal("[    0.000000] " + truth.LinuxBanner, lines[0]);
        Assert.Equal("[    0.000000] Command line: " + truth.Cmdline, lines[1]);
        Assert.All(lines.Where(l => l.Length > 0), l => Assert.Matches(@"^\[\s*\d+\.\d{6}\] ", l));
        (code, o, _) = Run(Nokaslr.CliArgs("log", "--json"));
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(o);
        var first = doc.RootElement[0];
        Assert.Equal(0, first.GetProperty("seq").GetInt64());
        Assert.Equal(0, first.GetProperty("ts").GetInt64());
        Assert.Equal(5, first.GetProperty("level").GetInt32());
        Assert.Equal(truth.LinuxBanner, first.GetProperty("text").GetString());
        Assert.True(doc.RootElement.GetArrayLength() > 200);
    }
}
