using System.Globalization;
using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests;

/// <summary>The CLI on the machine's own running kernel, where the test can read /proc/kallsyms: nlist opens the
/// symbols alone, so it answers whether or not /proc/kcore can be read (in many containers it cannot exist at all).</summary>
public class LiveCliTests
{
    [HostKallsymsFact]
    public void Nlist_on_the_running_kernel_needs_no_kcore_and_prints_kallsyms_addresses()
    {
        var want = new Dictionary<string, ulong>();
        foreach (var line in File.ReadLines(Host.KallsymsPath))
        {
            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && f[2] is "_stext" or "_text" && !want.ContainsKey(f[2]))
                want[f[2]] = ulong.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        var o = new StringWriter();
        var e = new StringWriter();
        var code = CommandLine.Run(["nlist", .. want.Keys], o, e);
        Assert.Equal("", e.ToString());
        Assert.Equal(0, code);
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(want.Count, lines.Length);
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            Assert.Equal(want[f[1]], ulong.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }
    }
}
