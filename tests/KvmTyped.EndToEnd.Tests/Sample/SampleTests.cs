using System.Text.Json;
using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Sample;

/// <summary>The README's main job: the bundled sample (a real kdump) gives the process list and log its truth records.</summary>
public class SampleTests
{
    private static readonly string Folder = Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64");
    private static readonly string[] Files = ["-n", Path.Combine(Folder, "System.map-6.1.0-56-amd64"), "-c", Path.Combine(Folder, "vmcore.kdump")];

    private static JsonElement Truth()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "truth.json")));
        return doc.RootElement.Clone();
    }

    private static string Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.True(CommandLine.Run([.. args, .. Files], o, e) == 0, e.ToString());
        Assert.Equal("", e.ToString());
        return o.ToString();
    }

    [Fact]
    public void Ps_lists_the_tasks_crash_found_in_the_sample()
    {
        var expected = Truth().GetProperty("tasks_from_dump_crash").EnumerateArray().ToList();
        using var doc = JsonDocument.Parse(Run("ps", "--json"));
        var ours = doc.RootElement.EnumerateArray().ToDictionary(t => t.GetProperty("task").GetString()!);
        foreach (var t in expected)
        {
            var task = t.GetProperty("task").GetString()!;
            Assert.True(ours.TryGetValue(task, out var mine), $"task {task} ({t.GetProperty("comm").GetString()}) missing");
            Assert.Equal(t.GetProperty("pid").GetInt32(), mine.GetProperty("pid").GetInt32());
            Assert.Equal(t.GetProperty("tgid").GetInt32(), mine.GetProperty("tgid").GetInt32());
            Assert.Equal(t.GetProperty("ppid").GetInt32(), mine.GetProperty("ppid").GetInt32());
            Assert.Equal(t.GetProperty("comm").GetString(), mine.GetProperty("comm").GetString());
        }
        // Beyond crash's walk of init_task.tasks, only the other CPUs' idle tasks (pid 0).
        var extra = ours.Keys.Except(expected.Select(t => t.GetProperty("task").GetString()!)).ToList();
        Assert.All(extra, k => Assert.Equal(0, ours[k].GetProperty("pid").GetInt32()));
        Assert.Contains(ours.Values, t => t.GetProperty("comm").GetString() == "kvmsample");
    }

    [Fact]
    public void Log_prints_the_ring_buffer_as_makedumpfile_does()
    {
        var truth = Truth();
        var lines = Run("log").TrimEnd('\n').Split('\n');
        var head = truth.GetProperty("dmesg_from_dump_head").EnumerateArray().Select(x => x.GetString()!).ToList();
        var tail = truth.GetProperty("dmesg_from_dump_tail").EnumerateArray().Select(x => x.GetString()!).ToList();
        Assert.Equal(truth.GetProperty("dmesg_from_dump_lines").GetInt32(), lines.Length);
        Assert.Equal(head, lines.Take(head.Count));
        Assert.Equal(tail, lines.Skip(lines.Length - tail.Count));
    }

    [Fact]
    public void Info_and_uname_match_the_guest()
    {
        var truth = Truth();
        using var doc = JsonDocument.Parse(Run("info", "--json"));
        Assert.Equal("kdump-compressed", doc.RootElement.GetProperty("format").GetString());
        Assert.Equal(truth.GetProperty("kaslr_offset").GetString(), doc.RootElement.GetProperty("kaslrOffset").GetString());
        var uname = truth.GetProperty("uname_a").GetString()!.Split(' ');
        Assert.StartsWith($"Linux {uname[1]} {uname[2]} ", Run("uname"));
    }
}
