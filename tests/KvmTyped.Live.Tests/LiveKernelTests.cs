using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace KvmTyped.Live.Tests;

/// <summary>kvmtyped and the libkvm facade on a real running kernel (Debian 6.1.0-56-amd64 under QEMU), compared with
/// that kernel's own /proc: the shared live check's six checks, the facade program's checks, and the system calls of
/// one `kvmtyped info` there.</summary>
[Collection("Live guest")]
public partial class LiveKernelTests(NativeBuilds builds, ITestOutputHelper output)
{
    /// <summary>Most system calls one `kvmtyped info` on the live kernel may make, counted by strace -c -f (issue 17).</summary>
    public const int MaxInfoSyscalls = 500;

    [LiveGuestFact]
    public void The_shared_live_check_passes_all_six_checks()
    {
        var (code, log) = LiveGuest.Run("bash", [LiveGuest.LiveCheck, builds.Cli]);
        output.WriteLine(log);
        Assert.Contains("live: 6/6 checks pass", log);
        Assert.Equal(0, code);
    }

    [LiveGuestFact]
    public void The_libkvm_facade_opens_the_running_kernel_and_agrees_with_proc()
    {
        var (log, blocks) = builds.Guest;
        output.WriteLine(log);
        Assert.True(blocks.TryGetValue("facade", out var facade), "the guest printed no facade block");
        output.WriteLine(facade.Text);
        Assert.Contains("facade: 6/6 checks pass", facade.Text);
        foreach (var check in (string[])["open", "nlist", "kread", "nextproc", "rdwr", "close"])
            Assert.Contains($"PASS {check} (", facade.Text);
        Assert.Contains("O_RDWR is refused", facade.Text);
        Assert.Equal(0, facade.Rc);
    }

    [LiveGuestFact]
    public void Info_on_the_running_kernel_makes_at_most_500_system_calls()
    {
        var (_, blocks) = builds.Guest;
        Assert.True(blocks.TryGetValue("info", out var info), "the guest printed no info block");
        Assert.Equal(0, info.Rc);
        Assert.Contains("(live kernel)", info.Text);
        Assert.Contains("release:      6.1.0-56-amd64", info.Text);
        Assert.True(blocks.TryGetValue("strace", out var strace), "the guest printed no strace block");
        output.WriteLine(strace.Text);
        var total = Total().Match(strace.Text);
        Assert.True(total.Success, $"no total line in strace -c output:\n{strace.Text}");
        var calls = int.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture);
        output.WriteLine($"kvmtyped info on the live kernel: {calls} system calls");
        Assert.InRange(calls, 1, MaxInfoSyscalls);
    }

    [LiveGuestFact]
    public void A_lime_file_of_the_running_guest_opens_as_a_core_and_agrees_with_the_guest()
    {
        var (_, blocks) = builds.Guest;
        Assert.True(blocks.TryGetValue("lime", out var lime), "the guest printed no lime block (LiME did not run)");
        Assert.Equal(0, lime.Rc);
        var file = builds.LimeFile();
        var map = Path.Combine(KvmTyped.TestSupport.Fixtures.Root, "amd64", "System.map-6.1.0-56-amd64");
        string Tool(params string[] args)
        {
            var (code, text) = LiveGuest.Run(builds.Cli, [.. args, "-n", map, "-c", file]);
            Assert.True(code == 0, $"kvmtyped {string.Join(' ', args)} on the LiME file: exit {code}\n{text}");
            return text;
        }

        var info = Tool("info");
        output.WriteLine(info);
        Assert.Contains("format:       LiME", info);
        // KASLR: the slide the banner search finds is the guest's, as its /proc/kallsyms showed _stext.
        var stext = blocks["lime-kallsyms"].Text.Split('\n').Select(l => l.Split(' ')).First(f => f.Length == 3 && f[2] == "_stext")[0];
        var slide = ulong.Parse(stext, NumberStyles.HexNumber, CultureInfo.InvariantCulture) - 0xffffffff81000000UL;
        Assert.Contains($"kaslr offset: 0x{slide:x} (linux_banner search)", info);

        Assert.Equal(blocks["lime-version"].Text.TrimEnd('\n'), Tool("rd", "linux_banner", "-s").TrimEnd('\n'));
        var uname = blocks["lime-uname"].Text.Split('\n');
        Assert.Equal($"Linux {uname[0]} {uname[1]} {uname[2]} {uname[3]} GNU/Linux", Tool("uname").TrimEnd('\n'));

        var ps = System.Text.Json.JsonDocument.Parse(Tool("ps", "--json")).RootElement.EnumerateArray()
            .Select(t => (Pid: t.GetProperty("pid").GetInt32(), Comm: t.GetProperty("comm").GetString()!)).ToList();
        var pids = blocks["lime-pids"].Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToList();
        Assert.NotEmpty(pids);
        foreach (var p in pids.Where(p => !p[1].StartsWith("kworker/", StringComparison.Ordinal)))
        {
            var pid = int.Parse(p[0], CultureInfo.InvariantCulture);
            Assert.Contains((pid, p[1].Length > 15 ? p[1][..15] : p[1]), ps);
        }
        output.WriteLine($"LiME file of the guest: {new FileInfo(file).Length} bytes, {pids.Count} processes as /proc listed them");
    }

    [LiveGuestFact]
    public void The_native_tool_writes_redirected_output_in_blocks_and_reports_a_failed_write()
    {
        // On the host, on the repository's sample: ps's table (about 4 KiB) to a file is one write system call, not
        // one a line; to a full device the failed write is named and the exit status is 1.
        const string map = "samples/linux-amd64/System.map-6.1.0-56-amd64", core = "samples/linux-amd64/vmcore.kdump";
        using var dir = new TempFolder();
        var (out1, trace) = (Path.Combine(dir.Path, "ps.txt"), Path.Combine(dir.Path, "write.trace"));
        var (code, log) = LiveGuest.Run("bash", ["-c", "strace -f -e trace=write -o \"$1\" \"$0\" ps -n \"$2\" -c \"$3\" > \"$4\"", builds.Cli, trace, map, core, out1]);
        Assert.True(code == 0, log);
        var table = File.ReadAllText(out1);
        Assert.Contains("swapper/0", table);
        Assert.True(table.Split('\n').Length > 40, table);
        // Standard output is written through a duplicate of descriptor 1; nothing else is written on success.
        var writes = File.ReadAllLines(trace).Where(l => l.Contains(" write(", StringComparison.Ordinal)).ToList();
        Assert.True(writes.Count == 1, string.Join('\n', writes));
        (code, log) = LiveGuest.Run("bash", ["-c", "\"$0\" ps -n \"$1\" -c \"$2\" > /dev/full", builds.Cli, map, core]);
        Assert.Equal(1, code);
        Assert.Contains("kvmtyped: standard output: No space left on device", log);
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("kvmtyped-out-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }

    /// <summary>strace -c's last line: "100.00 seconds usecs/call CALLS [ERRORS] total".</summary>
    [GeneratedRegex(@"^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total\s*$", RegexOptions.Multiline)]
    private static partial Regex Total();
}
